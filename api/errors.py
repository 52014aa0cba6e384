"""Exceptions → RFC 9457 `application/problem+json`, in one place.

Every error the API answers, from a 400 to a 500, has the same shape:
`{"type", "title", "status", "detail"}` (plus `instance`, the request path). A 500
never shows a stack trace to the client; it is logged with the correlation id.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import falcon

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


def handle_unexpected(req: falcon.Request, resp: falcon.Response, exc: Exception,
                      params: dict[str, Any]) -> None:
    logger.exception("unhandled error", extra={"path": req.path, "method": req.method})
    raise falcon.HTTPInternalServerError(
        title="Internal server error",
        description="the request failed; the correlation id in X-Correlation-ID identifies it",
    )


def register(app: falcon.App[falcon.Request, falcon.Response]) -> None:
    app.set_error_serializer(serialize_problem)
    app.add_error_handler(Exception, handle_unexpected)
