"""The development issuer (SPEC 6): an ES256 key under BO_HOME that signs tokens for local use.

`bo dev-token --role ADMIN_READ` prints a token it signed; a local `bo serve` with no
issuer configured trusts this key (its public JWKS), and nothing else. It is refused when
`BO_ENV=prod`. The private key never leaves `BO_HOME/dev-issuer/` (mode 0600) and is made
on first use.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any, Final

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

ISSUER: Final = "urn:bo:dev-issuer"
AUDIENCE: Final = "bo-api"
DEFAULT_TTL_S: Final = 3600


class DevIssuer:
    def __init__(self, home: Path) -> None:
        self.folder = Path(home).expanduser() / "dev-issuer"
        self._private = self._load_or_make()
        public = self._private.public_key().public_numbers()
        self._jwk = {"kty": "EC", "crv": "P-256", "x": _b64(public.x.to_bytes(32, "big")),
                     "y": _b64(public.y.to_bytes(32, "big")), "use": "sig", "alg": "ES256"}
        self.kid = _thumbprint(self._jwk)

    def jwks(self) -> dict[str, Any]:
        return {"keys": [{**self._jwk, "kid": self.kid}]}

    def token(self, roles: list[str], *, subject: str = "dev-user", name: str | None = None,
              ttl_s: int = DEFAULT_TTL_S, audience: str = AUDIENCE, roles_claim: str = "roles") -> str:
        now = int(time.time())
        claims: dict[str, Any] = {"iss": ISSUER, "aud": audience, "sub": subject, "iat": now, "nbf": now,
                                  "exp": now + ttl_s, "jti": uuid.uuid4().hex}
        if name:
            claims["name"] = name
        _set_claim(claims, roles_claim, roles)
        return jwt.encode(claims, self._private, algorithm="ES256", headers={"kid": self.kid, "typ": "JWT"})

    def _load_or_make(self) -> ec.EllipticCurvePrivateKey:
        path = self.folder / "private.pem"
        if not path.exists():
            self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            key = ec.generate_private_key(ec.SECP256R1())
            pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:  # another process made it first
                pass
            else:
                with os.fdopen(fd, "wb") as out:
                    out.write(pem)
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(loaded, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{path} is not an EC private key")
        return loaded


def _set_claim(claims: dict[str, Any], path: str, value: Any) -> None:
    """Put `value` at a dotted claim path (`roles`, `realm_access.roles`)."""
    *parents, last = path.split(".")
    node = claims
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 thumbprint of an EC key: the kid."""
    canonical = json.dumps({k: jwk[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"), sort_keys=True)
    return _b64(hashlib.sha256(canonical.encode()).digest())
