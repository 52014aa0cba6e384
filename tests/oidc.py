"""A real OIDC issuer for tests: discovery and JWKS over HTTP on 127.0.0.1, with its own keys.

It signs tokens with RSA (RS256, PS256), EC P-256 (ES256) and Ed25519 (EdDSA) keys, can
rotate its keys, answer slowly, or stop answering, and counts the JWKS fetches it served.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


class Issuer:
    """Serves `/.well-known/openid-configuration` and `/jwks` until `close()`."""

    def __init__(self, audience: str = "bo-api") -> None:
        self.audience = audience
        self.keys: dict[str, tuple[str, PrivateKey]] = {}  # kid -> (alg, private key)
        self.jwks_fetches = 0
        self.delay_s = 0.0
        self.drip_s = 0.0  # seconds between bytes of the answer
        self.failing = False
        self.redirect_to: str | None = None
        self.claimed_issuer: str | None = None  # what discovery says the issuer is (default: its URL)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, name="oidc", daemon=True).start()
        for alg in ("RS256", "ES256", "EdDSA", "PS256"):
            self.add_key(alg)

    @property
    def jwks_url(self) -> str:
        return f"{self.url}/jwks"

    def add_key(self, alg: str) -> str:
        key: PrivateKey
        if alg in ("RS256", "PS256"):
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        elif alg == "ES256":
            key = ec.generate_private_key(ec.SECP256R1())
        else:
            key = ed25519.Ed25519PrivateKey.generate()
        kid = f"{alg.lower()}-{uuid.uuid4().hex[:8]}"
        with self._lock:
            self.keys[kid] = (alg, key)
        return kid

    def rotate(self) -> str:
        """Replace every key by one new ES256 key; answer its kid."""
        with self._lock:
            self.keys.clear()
        return self.add_key("ES256")

    def kid_for(self, alg: str) -> str:
        return next(kid for kid, (a, _) in self.keys.items() if a == alg)

    def jwks(self) -> dict[str, Any]:
        out = []
        with self._lock:
            items = list(self.keys.items())
        for kid, (alg, key) in items:
            public = key.public_key()
            if isinstance(public, rsa.RSAPublicKey):
                jwk = json.loads(RSAAlgorithm.to_jwk(public))
            elif isinstance(public, ec.EllipticCurvePublicKey):
                jwk = json.loads(ECAlgorithm.to_jwk(public))
            else:
                jwk = json.loads(OKPAlgorithm.to_jwk(public))
            out.append({**jwk, "kid": kid, "use": "sig", "alg": alg})
        return {"keys": out}

    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims = {"iss": self.url, "aud": self.audience, "sub": "alice", "name": "Alice Auditor", "iat": now,
                  "nbf": now, "exp": now + 600, "jti": uuid.uuid4().hex, "roles": ["ADMIN_READ", "ADMIN_AUDIT"]}
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def token(self, alg: str = "ES256", kid: str | None = None, headers: dict[str, Any] | None = None,
              **claims: Any) -> str:
        kid = kid or self.kid_for(alg)
        _, key = self.keys[kid]
        return jwt.encode(self.claims(**claims), key, algorithm=alg, headers={"kid": kid, **(headers or {})})

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if issuer.delay_s:
                    time.sleep(issuer.delay_s)
                if issuer.failing:
                    self.send_error(503)
                    return
                if issuer.redirect_to:
                    self.send_response(302)
                    self.send_header("Location", issuer.redirect_to)
                    self.end_headers()
                    return
                if self.path == "/.well-known/openid-configuration":
                    body = {"issuer": issuer.claimed_issuer or issuer.url, "jwks_uri": issuer.jwks_url}
                elif self.path == "/jwks":
                    with issuer._lock:
                        issuer.jwks_fetches += 1
                    body = issuer.jwks()
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if not issuer.drip_s:
                    self.wfile.write(data)
                    return
                for i in range(len(data)):
                    self.wfile.write(data[i:i + 1])
                    self.wfile.flush()
                    time.sleep(issuer.drip_s)

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler
