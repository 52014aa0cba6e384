"""A stand-in for the managed-identity endpoint of Container Apps and App Service, on loopback.

Container Apps gives a process `IDENTITY_ENDPOINT` and `IDENTITY_HEADER`; azure-identity's
`ManagedIdentityCredential` then asks `GET {endpoint}?api-version=2019-08-01&resource=R`
with the header `X-IDENTITY-HEADER`, and gets a JSON token. This server speaks that protocol
over real HTTP, so bo's real credential code runs against it: it hands out numbered tokens
(`token-1`, `token-2`, …) that expire after `lifetime_s`, checks the header, and records
which resource and client id each request asked for.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


class IdentityEndpoint:
    def __init__(self, lifetime_s: float = 3600.0) -> None:
        self.lifetime_s = lifetime_s
        self.header = secrets.token_hex(8)
        self.issued: list[tuple[str, str, str | None]] = []  # (token, resource, client id)
        self.refused = 0
        self.failing = False  # answer 500, as an identity endpoint not up yet
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/msi/token"
        threading.Thread(target=self._server.serve_forever, name="identity", daemon=True).start()

    def environment(self) -> dict[str, str]:
        """The variables Container Apps sets for a process with a managed identity."""
        return {"IDENTITY_ENDPOINT": self.url, "IDENTITY_HEADER": self.header}

    def tokens_for(self, resource: str) -> list[str]:
        with self._lock:
            return [t for t, r, _ in self.issued if r == resource]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _issue(self, resource: str, client_id: str | None) -> dict[str, str]:
        with self._lock:
            token = f"token-{len(self.issued) + 1}"
            self.issued.append((token, resource, client_id))
        expires_on = int(time.time() + self.lifetime_s)
        return {"access_token": token, "expires_on": str(expires_on), "resource": resource, "token_type": "Bearer"}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if endpoint.failing:
                    self._answer(500, {"error": "unavailable"})
                    return
                query = parse_qs(urlparse(self.path).query)
                if self.headers.get("X-IDENTITY-HEADER") != endpoint.header or "resource" not in query:
                    with endpoint._lock:
                        endpoint.refused += 1
                    self._answer(400, {"error": "invalid_request"})
                    return
                client_id = query.get("client_id", [None])[0]
                self._answer(200, endpoint._issue(query["resource"][0], client_id))

            def _answer(self, status: int, body: dict[str, str]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler
