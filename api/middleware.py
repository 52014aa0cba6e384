"""Per-request context: correlation id (from `X-Correlation-ID` or new) and W3C trace id."""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar
from typing import Any

import falcon

from api.errors import BadRequestError
from telemetry.tracing import current_trace_id, quiet_if_unsampled

_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


class RequestContextMiddleware:
    """Sets the correlation and trace ids into the given context variables for each request."""

    def __init__(self, correlation_id: ContextVar[str | None], trace_id: ContextVar[str | None]) -> None:
        self.correlation_id = correlation_id
        self.trace_id = trace_id

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        given = req.get_header("X-Correlation-ID")
        cid = given if given and _SAFE_ID.match(given) else uuid.uuid4().hex
        match = _TRACEPARENT.match(req.get_header("traceparent") or "")
        req.context.correlation_id = cid
        # The request's span, when tracing is on (it continues the caller's traceparent), else the caller's.
        req.context.trace_id = current_trace_id() or (match.group(1) if match else None)
        self.correlation_id.set(cid)
        self.trace_id.set(req.context.trace_id)
        resp.set_header("X-Correlation-ID", cid)
        req.context.lift_quiet = quiet_if_unsampled()  # no query spans under an unsampled request

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource: object,
                         req_succeeded: bool) -> None:
        self.correlation_id.set(None)
        self.trace_id.set(None)
        lift = req.context.get("lift_quiet")
        if lift is not None:
            lift()


class JsonOnlyMiddleware:
    """406 (as problem+json) for a client that accepts neither JSON nor problem+json: every
    answer of this API is one of the two (but `/metrics`, Prometheus's text format)."""

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        if req.path == "/metrics":  # Prometheus text format, for scrapers
            return
        if not (req.client_accepts_json or req.client_accepts("application/problem+json")):
            raise falcon.HTTPNotAcceptable(
                title="Not acceptable", description="this API answers application/json or application/problem+json")


class NoNulMiddleware:
    """400 for a NUL character in a path or query parameter: no id or filter can hold one, and
    PostgreSQL text cannot (the look-up would fail as a 500)."""

    def process_resource(self, req: falcon.Request, resp: falcon.Response, resource: object,
                         params: dict[str, Any]) -> None:
        for name, value in [*params.items(), *req.params.items()]:
            values = value if isinstance(value, list) else [value]
            if any(isinstance(v, str) and "\x00" in v for v in values):
                raise BadRequestError(name, "contains a NUL character")
