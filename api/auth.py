"""Who is calling, and may they: the one place authentication and authorisation plug in.

`AuthMiddleware` asks an `Authenticator` for the principal of every `/admin/*` request;
resources declare the role they need with `@falcon.before(require_role(...))`. Bearer
JWT validation against the issuer's JWKS (SPEC 6) arrives as another `Authenticator`;
until then only `LocalOpenAccess` exists, and `bo serve` refuses to start in `prod`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import falcon

ADMIN_READ = "ADMIN_READ"
ADMIN_AUDIT = "ADMIN_AUDIT"


@dataclass(frozen=True, slots=True)
class Principal:
    subject: str
    roles: frozenset[str]
    name: str | None = None


class Authenticator(Protocol):
    def authenticate(self, req: falcon.Request) -> Principal:
        """The caller, or raise falcon.HTTPUnauthorized."""
        ...


class LocalOpenAccess:
    """For `local` and `dev` only: every caller is the local operator with every role."""

    def authenticate(self, req: falcon.Request) -> Principal:
        return Principal("local-operator", frozenset({ADMIN_READ, ADMIN_AUDIT}))


class AuthMiddleware:
    def __init__(self, authenticator: Authenticator) -> None:
        self.authenticator = authenticator

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.principal = None
        if req.path.startswith("/admin/"):
            req.context.principal = self.authenticator.authenticate(req)


def require_role(role: str) -> Callable[..., None]:
    def hook(req: falcon.Request, resp: falcon.Response, resource: Any, params: dict[str, Any]) -> None:
        principal: Principal | None = req.context.principal
        if principal is None:
            raise falcon.HTTPUnauthorized(title="Unauthorized", description="a bearer token is required")
        if role not in principal.roles:
            raise falcon.HTTPForbidden(title="Forbidden", description=f"the {role} role is required")

    return hook
