"""Exceptions → RFC 9457 `application/problem+json`, in one place.

Every error the API answers, from a 400 to a 503, has the same shape:
`{"type", "title", "status", "detail"}` (plus `instance`, the request path). A 500
never shows a stack trace to the client; it is logged with the correlation id. A database
that is down or restarting (judged by `eventstore.db.diagnose`, as every bo process judges
it) is a 503 with `Retry-After`: the client may try again, and nothing is wrong with its request.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import falcon

from eventstore.db import diagnose

PROBLEM_JSON = "application/problem+json"
logger = logging.getLogger(__name__)


class BadRequestError(falcon.HTTPBadRequest):
    """A query parameter or cursor the API cannot accept, naming which."""

    def __init__(self, parameter: str, problem: str) -> None:
        super().__init__(title="Bad request", description=f"{parameter}: {problem}")


class NotFoundError(falcon.HTTPNotFound):
    def __init__(self, what: str) -> None:
        super().__init__(title="Not found", description=f"{what} is not known")


def serialize_problem(req: falcon.Request, resp: falcon.Response, exc: falcon.HTTPError) -> None:
    status = exc.status_code
    problem: dict[str, Any] = {
        "type": "about:blank",
        "title": exc.title or "Error",
        "status": status,
        "instance": req.path,
    }
    if exc.description:
        problem["detail"] = exc.description
    resp.content_type = PROBLEM_JSON
    resp.text = json.dumps(problem)


RETRY_AFTER_S = 5


class DatabaseUnavailable(falcon.HTTPServiceUnavailable):
    def __init__(self) -> None:
        super().__init__(title="Service unavailable", retry_after=RETRY_AFTER_S,
                         description="the database is unavailable; retry shortly")


def handle_unexpected(req: falcon.Request, resp: falcon.Response, exc: Exception,
                      params: dict[str, Any]) -> None:
    diagnosis = diagnose(exc)
    if diagnosis is not None and diagnosis.transient:
        logger.warning("database unavailable", extra={"path": req.path, "method": req.method,
                                                      "error": diagnosis.line})
        req.context.database_unavailable = True  # the audit row is then not waited for long (api/audit.py)
        raise DatabaseUnavailable()
    logger.exception("unhandled error", extra={"path": req.path, "method": req.method,
                                               "sqlstate": diagnosis.sqlstate if diagnosis else None})
    raise falcon.HTTPInternalServerError(
        title="Internal server error",
        description="the request failed; the correlation id in X-Correlation-ID identifies it",
    )


def register(app: falcon.App[falcon.Request, falcon.Response]) -> None:
    app.set_error_serializer(serialize_problem)
    app.add_error_handler(Exception, handle_unexpected)
