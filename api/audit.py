"""One audit row for every `/admin/*` request, allowed or not, written before the answer leaves.

`AuditMiddleware` sits outside authentication, so it sees the 401s and 403s too. After the
resource (or the error handler) has made the answer, it appends the row (api/audit_log.py)
in the request path, on the connection the look-up used (api/connections.py: one checkout,
and one more round trip, whose commit makes the row durable before the answer leaves). If
the row cannot be written, the answer is replaced by a 503: no `/admin/*` answer ever
leaves unaudited (fail closed). The row says who (subject, name, issuer, token id, roles),
what (method, route template, path, resource id, the query with secret-looking values
removed, `unmask`), the result (status and ALLOWED / DENIED / NOT_FOUND / ERROR), and from
where (client IP, honouring `X-Forwarded-For` only from the trusted proxies; user agent;
correlation and trace ids).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode

import falcon
from prometheus_client import Counter

from api.audit_log import AuditEntry, record
from api.auth import Principal, is_admin_path
from api.connections import RequestConnections
from api.errors import PROBLEM_JSON, RETRY_AFTER_S
from eventstore.db import diagnose

log = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# Query parameters whose values are never written down.
_SECRET_PARAMETER = re.compile(r"token|secret|password|passwd|key|code|signature|auth|session|jwt|bearer|assertion"
                               r"|credential", re.IGNORECASE)
_JWT_LIKE = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.")  # a token pasted into any parameter
_RESOURCE_KINDS = {"tx_id": "tx", "order_id": "payment-order", "wallet_id": "wallet"}
MAX_TEXT = 512


def result_of(status: int) -> str:
    if status in (401, 403):
        return "DENIED"
    if status == 404:
        return "NOT_FOUND"
    return "ALLOWED" if status < 400 else "ERROR"


def trusted_networks(spec: str | None) -> tuple[Network, ...]:
    """`BO_TRUSTED_PROXIES`: comma-separated addresses or CIDR blocks."""
    return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in (spec or "").split(",") if part.strip())


def client_ip(remote: str | None, forwarded_for: str | None, trusted: Sequence[Network]) -> str | None:
    """The caller's address: the peer's, unless the peer is a trusted proxy; then the nearest
    address in `X-Forwarded-For` that is not a trusted proxy (read from the right)."""
    if remote is None or not _trusted(remote, trusted) or not forwarded_for:
        return remote
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    nearest = remote
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return nearest  # a forged or garbled entry: trust nothing beyond it
        if not _trusted(hop, trusted):
            return hop
        nearest = hop
    return nearest


def _trusted(address: str, trusted: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def redacted_query(query_string: str) -> str | None:
    if not query_string:
        return None
    pairs = [(k, "[removed]" if _SECRET_PARAMETER.search(k) or _JWT_LIKE.search(v) else v)
             for k, v in parse_qsl(query_string, keep_blank_values=True)]
    return _cap(urlencode(pairs))


def _cap(text: str | None) -> str | None:
    """A text PostgreSQL can store (no NUL, no lone surrogate: escaped), at most MAX_TEXT long."""
    if text is None:
        return None
    clean = text.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")
    return clean if len(clean) <= MAX_TEXT else clean[:MAX_TEXT] + "…"


class AuditMiddleware:
    def __init__(self, connections: RequestConnections, trusted_proxies: Sequence[Network] = (),
                 failures: Counter | None = None) -> None:
        self.connections = connections
        self.trusted = tuple(trusted_proxies)
        self.failures = failures

    def process_resource(self, req: falcon.Request, resp: falcon.Response, resource: object,
                         params: dict[str, Any]) -> None:
        for name, kind in _RESOURCE_KINDS.items():
            if name in params:
                req.context.audit_resource = f"{kind}:{params[name]}"

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource: object,
                         req_succeeded: bool) -> None:
        if not is_admin_path(req.path):
            return
        # When the answer already says the database is unavailable, the row is still tried, but
        # not for long: the answer stays a 503 either way.
        wait_s = 0.5 if getattr(req.context, "database_unavailable", False) else None
        try:
            with self.connections.for_audit(req, wait_s) as conn:  # the look-up's, when it has one
                record(conn, self.entry(req, resp))
        except Exception as exc:
            log.error("audit row could not be written; answering 503", extra={
                "path": req.path, "error": str(exc).splitlines()[0] if str(exc) else type(exc).__name__})
            if self.failures is not None:
                self.failures.inc()
            _unaudited(req, resp, exc)

    def entry(self, req: falcon.Request, resp: falcon.Response) -> AuditEntry:
        principal: Principal | None = getattr(req.context, "principal", None)
        status = falcon.http_status_to_code(resp.status)
        # What the API honours: `unmask=true` on a history route (api/resources/history.py).
        unmask = req.get_param("unmask") == "true" and (req.uri_template or "").endswith("/history")
        return AuditEntry(
            subject=_cap(principal.subject) if principal else None, name=_cap(principal.name) if principal else None,
            issuer=_cap(principal.issuer) if principal else None,
            token_id=_cap(principal.token_id) if principal else None,
            roles=sorted(principal.roles) if principal else [], method=_cap(req.method) or "", route=req.uri_template,
            path=_cap(req.path) or "", resource=_cap(getattr(req.context, "audit_resource", None)),
            query=redacted_query(req.query_string), unmask=unmask, status=status, result=result_of(status),
            client_ip=_cap(client_ip(req.remote_addr, req.get_header("X-Forwarded-For"), self.trusted)),
            user_agent=_cap(req.user_agent), correlation_id=_cap(getattr(req.context, "correlation_id", None)),
            trace_id=_cap(getattr(req.context, "trace_id", None)))


def _unaudited(req: falcon.Request, resp: falcon.Response, exc: Exception) -> None:
    """Replace the answer: nothing leaves that the trail does not hold. The detail names the
    cause as far as a client may know it: the database away, or the trail refusing rows."""
    resp.status = falcon.HTTP_503
    for header in ("WWW-Authenticate", "Allow", "Location"):
        resp.delete_header(header)
    resp.media = None
    resp.data = None
    resp.stream = None
    resp.content_type = PROBLEM_JSON
    resp.set_header("Retry-After", str(RETRY_AFTER_S))
    diagnosis = diagnose(exc)
    away = getattr(req.context, "database_unavailable", False) or (diagnosis is not None and diagnosis.transient)
    cause = "the database is unavailable" if away else "the audit trail does not accept rows now"
    resp.text = json.dumps({"type": "about:blank", "title": "Service unavailable", "status": 503,
                            "detail": f"{cause}, so the access could not be audited and is not answered;"
                                      " retry shortly",
                            "instance": req.path})
