"""`/openapi.json` describes the API as it is: schemathesis generates requests from it against
the live WSGI app (a real, projected database) and every answer must conform: no 5xx, the
documented status codes, content types and response schemas."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import falcon.testing
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from api import openapi
from eventstore.db import open_pool
from tests.conftest import SAMPLES
from tests.integration.helpers import api_app, append_all, bearer, runner, sample_records


@pytest.fixture(scope="module")
def app(database_url: str) -> Iterator[Any]:
    append_all(database_url, sample_records(SAMPLES))
    runner(database_url).catch_up()
    pool = open_pool(database_url)
    yield api_app(pool, cursor_secret=b"o" * 32)
    pool.close()


@pytest.fixture(scope="module")
def api_schema(app: Any) -> Any:
    return schemathesis.openapi.from_wsgi("/openapi.json", app)


# No 5xx; documented status codes, content types and response schemas; out-of-schema input
# refused. Not "schema-valid input accepted": a well-formed but forged cursor is a 400 by
# SPEC 5 (tamper-evident), which no schema can express.
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          negative_data_rejection]

OPERATIONS = [(route.path, "GET") for route in openapi.ROUTES]
TOKEN = bearer("ADMIN_READ", "ADMIN_AUDIT")


@pytest.mark.parametrize(("path", "method"), OPERATIONS, ids=[path for path, _ in OPERATIONS])
def test_every_answer_conforms_to_the_openapi_document(api_schema: Any, path: str, method: str) -> None:
    operation = api_schema.find_operation_by_path(method, path)

    @given(case=operation.as_strategy())
    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
    def check(case: Any) -> None:
        case.call_and_validate(checks=CHECKS, headers=TOKEN)

    check()


def test_the_document_is_openapi_3_1_and_lists_every_route(app: Any) -> None:
    document = falcon.testing.TestClient(app).simulate_get("/openapi.json").json
    assert document["openapi"] == "3.1.0"
    assert set(document["paths"]) == {
        "/admin/tx/{tx_id}", "/admin/payment-orders/{order_id}", "/admin/wallets/{wallet_id}/tx",
        "/admin/tx/{tx_id}/history", "/admin/payment-orders/{order_id}/history", "/admin/projections",
        "/admin/audit-log", "/metrics", "/healthz", "/readyz"}


def test_known_records_conform_too(app: Any, api_schema: Any) -> None:
    """Generated ids are mostly unknown (404s): the sample records exercise the 200 schemas."""
    client = falcon.testing.TestClient(app, headers=TOKEN)
    for path in ("/admin/tx/tx-1d", "/admin/tx/tx-nv", "/admin/payment-orders/ord-1", "/admin/payment-orders/ord-3",
                 "/admin/wallets/w-payer/tx?limit=2", "/admin/tx/tx-1c/history",
                 "/admin/payment-orders/ord-1/history", "/admin/projections", "/healthz", "/readyz",
                 "/admin/tx/tx-1d?as_of=2999-01-01T00:00:00Z"):
        route, _, query = path.partition("?")
        result = client.simulate_get(route, query_string=query)
        assert result.status_code == 200, (path, result.text)
        validate_against(api_schema, route, result.json)


def validate_against(api_schema: Any, route: str, body: Any) -> None:
    import jsonschema

    document = api_schema.raw_schema
    template = next(p for p in document["paths"] if _matches(p, route))
    ref = document["paths"][template]["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    resolver_doc = {**document["components"]["schemas"][ref.rsplit("/", 1)[1]], "components": document["components"]}
    jsonschema.Draft202012Validator(resolver_doc).validate(body)


def _matches(template: str, path: str) -> bool:
    t, p = template.strip("/").split("/"), path.strip("/").split("/")
    return len(t) == len(p) and all(a == b or a.startswith("{") for a, b in zip(t, p, strict=True))


def test_an_empty_cursor_is_outside_the_document_as_the_api_refuses_it(app: Any) -> None:
    client = falcon.testing.TestClient(app, headers=TOKEN)
    document = client.simulate_get("/openapi.json").json
    for path in ("/admin/wallets/{wallet_id}/tx", "/admin/tx/{tx_id}/history", "/admin/audit-log"):
        cursor = next(p for p in document["paths"][path]["get"]["parameters"] if p["name"] == "cursor")
        assert cursor["schema"]["minLength"] == 1, path
    assert client.simulate_get("/admin/wallets/w-payer/tx", query_string="cursor=").status_code == 400
