"""Who is calling, and may they: bearer JWTs on every `/admin/*` route (SPEC 6).

`AuthMiddleware` authenticates every `/admin/*` request before routing, so an anonymous
request is a 401 whether or not the resource (or even the route) exists. Resources declare
the role they need with `@falcon.before(require_role(...))`; a valid token without it is a
403, checked before the resource looks anything up. Both are problem+json and say nothing
about the resource. Tokens are verified by `api.tokens.TokenVerifier`; roles come from a
configurable claim (dotted paths such as `realm_access.roles` work), and ADMIN_AUDIT implies
ADMIN_READ only when configured so.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import falcon

from api.tokens import TokenError, TokenVerifier, VerifiedToken

ADMIN_READ = "ADMIN_READ"
ADMIN_AUDIT = "ADMIN_AUDIT"
ROLES = frozenset({ADMIN_READ, ADMIN_AUDIT})
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Principal:
    subject: str
    roles: frozenset[str]
    name: str | None = None
    issuer: str | None = None
    token_id: str | None = None


class Authenticator(Protocol):
    def authenticate(self, req: falcon.Request) -> Principal:
        """The caller, or raise `Unauthorized`."""
        ...


class Unauthorized(falcon.HTTPUnauthorized):
    def __init__(self, description: str, error: str | None = None) -> None:
        challenge = 'Bearer realm="bo"' + (f', error="{error}"' if error else "")
        super().__init__(title="Unauthorized", description=description, challenges=[challenge])


class BearerTokens:
    """The `Authorization: Bearer …` token of the request, verified; its roles from `roles_claim`."""

    def __init__(self, verifier: TokenVerifier, *, roles_claim: str = "roles",
                 audit_implies_read: bool = False) -> None:
        self.verifier = verifier
        self.roles_claim = roles_claim
        self.audit_implies_read = audit_implies_read

    def authenticate(self, req: falcon.Request) -> Principal:
        header = req.get_header("Authorization")
        if not header:
            raise Unauthorized("a bearer token is required")
        scheme, _, token = header.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("a bearer token is required", "invalid_request")
        try:
            verified = self.verifier.verify(token)
        except TokenError as exc:
            log.info("bearer token refused", extra={"reason": str(exc), "path": req.path})
            raise Unauthorized("the bearer token is not valid", "invalid_token") from None
        return Principal(verified.subject, self._roles(verified), verified.name, verified.issuer, verified.token_id)

    def _roles(self, token: VerifiedToken) -> frozenset[str]:
        claimed = token.claim_at(self.roles_claim)
        if isinstance(claimed, str):
            claimed = claimed.split()
        roles = frozenset(r for r in claimed if isinstance(r, str)) & ROLES if isinstance(claimed, list) \
            else frozenset()
        if self.audit_implies_read and ADMIN_AUDIT in roles:
            roles |= {ADMIN_READ}
        return roles


def is_admin_path(path: str) -> bool:
    """Whether the router may take `path` to an `/admin` route (it ignores repeated leading slashes)."""
    return path.lstrip("/").split("/", 1)[0] == "admin"


class AuthMiddleware:
    def __init__(self, authenticator: Authenticator) -> None:
        self.authenticator = authenticator

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.principal = None
        if is_admin_path(req.path):
            req.context.principal = self.authenticator.authenticate(req)


def require_role(role: str) -> Callable[..., None]:
    def hook(req: falcon.Request, resp: falcon.Response, resource: Any, params: dict[str, Any]) -> None:
        principal: Principal | None = req.context.principal
        if principal is None:
            raise Unauthorized("a bearer token is required")
        if role not in principal.roles:
            raise falcon.HTTPForbidden(title="Forbidden", description=f"the {role} role is required")

    return hook
