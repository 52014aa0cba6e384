"""`create_app(deps) -> falcon.App`: routes, middleware and error handling, nothing global."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import falcon
from psycopg_pool import ConnectionPool

from api import errors, openapi
from api.audit import AuditMiddleware, Network
from api.auth import Authenticator, AuthMiddleware
from api.connections import RequestConnectionMiddleware, RequestConnections
from api.cursor import CursorCodec
from api.metrics import RequestMetrics, RequestMetricsMiddleware
from api.middleware import JsonOnlyMiddleware, NoNulMiddleware, RequestContextMiddleware
from api.resources.audit import AuditLogResource
from api.resources.health import HealthResource, OpenApiResource, ReadyResource
from api.resources.history import HistoryResource
from api.resources.ledger import TxResource, WalletTxResource
from api.resources.metrics import MetricsResource
from api.resources.orders import PaymentOrderResource
from api.resources.projections import ProjectionsResource
from eventstore.db import SchemaExpectation
from projections import history


@dataclass(frozen=True)
class AppDeps:
    pool: ConnectionPool
    authenticator: Authenticator
    cursor_secret: bytes
    schema: SchemaExpectation
    trusted_proxies: tuple[Network, ...] = ()
    # Where the audit rows are written when `pool` is a read replica's (None: on `pool`).
    audit_pool: ConnectionPool | None = None
    # False only where bench/api.py measures what the trail costs; no setting reaches it.
    audited: bool = True
    # False only where bench/api.py measures what the request metrics cost; no setting reaches it.
    metered: bool = True
    correlation_id: ContextVar[str | None] = field(
        default_factory=lambda: ContextVar("correlation_id", default=None))
    trace_id: ContextVar[str | None] = field(
        default_factory=lambda: ContextVar("trace_id", default=None))


def create_app(deps: AppDeps) -> falcon.App[falcon.Request, falcon.Response]:
    connections = RequestConnections(deps.pool, deps.audit_pool)
    requests = RequestMetrics()
    cursors = CursorCodec(deps.cursor_secret)
    resources: dict[str, object] = {
        "/admin/tx/{tx_id}": TxResource(connections),
        "/admin/wallets/{wallet_id}/tx": WalletTxResource(connections, cursors),
        "/admin/payment-orders/{order_id}": PaymentOrderResource(connections),
        "/admin/tx/{tx_id}/history": HistoryResource(connections, cursors, history.TX),
        "/admin/payment-orders/{order_id}/history": HistoryResource(connections, cursors, history.PAYMENT_ORDER),
        "/admin/projections": ProjectionsResource(connections),
        "/admin/audit-log": AuditLogResource(connections, cursors),
        "/metrics": MetricsResource(deps.pool, requests),
        "/healthz": HealthResource(),
        "/readyz": ReadyResource([deps.pool, *([deps.audit_pool] if deps.audit_pool else [])], deps.schema,
                                 audit_pool=deps.audit_pool, audited=deps.audited),
    }
    spec = OpenApiResource()
    middleware: list[Any] = [
        # Times all below, the audit row too.
        *([RequestMetricsMiddleware(requests, {**resources, "/openapi.json": spec})] if deps.metered else []),
        RequestConnectionMiddleware(connections),  # connections go back after the audit row
        RequestContextMiddleware(deps.correlation_id, deps.trace_id),
        # It sees every answer; a row it cannot write counts in bo_api_audit_write_failures_total.
        *([AuditMiddleware(connections, deps.trusted_proxies, requests.audit_failures)] if deps.audited else []),
        JsonOnlyMiddleware(),
        AuthMiddleware(deps.authenticator),
        NoNulMiddleware(),
    ]
    app = falcon.App(middleware=middleware)
    errors.register(app)
    described = {route.path for route in openapi.ROUTES}
    if set(resources) != described:  # a route must not exist without its OpenAPI description
        raise RuntimeError(f"routes and OpenAPI disagree: {sorted(set(resources) ^ described)}")
    for path, resource in resources.items():
        app.add_route(path, resource)
    app.add_route("/openapi.json", spec)
    return app
