"""`GET /admin/tx/{id}/history`, `GET /admin/payment-orders/{id}/history` and `GET /admin/projections`
through the WSGI app, over the projected samples."""

from __future__ import annotations

from collections.abc import Iterator

import falcon.testing
import psycopg
import pytest

from eventstore.db import open_pool
from tests.conftest import SAMPLES
from tests.integration.helpers import api_client, append_all, runner, sample_records


@pytest.fixture(scope="module")
def client(database_url: str) -> Iterator[falcon.testing.TestClient]:
    append_all(database_url, sample_records(SAMPLES))
    runner(database_url).catch_up()
    pool = open_pool(database_url)
    yield api_client(pool, cursor_secret=b"h" * 32)
    pool.close()


def test_tx_history_lists_every_logged_row_in_position_order_with_its_fate(
        client: falcon.testing.TestClient) -> None:
    body = client.simulate_get("/admin/tx/tx-1c/history").json
    items = body["items"]
    assert body["next_cursor"] is None
    assert [i["position"] for i in items] == sorted(i["position"] for i in items)
    e001 = [(i["fate"], i["reason"]) for i in items if i["event_id"] == "e-001"]
    assert e001 == [("APPLIED", None), ("DUPLICATE", None), ("DEAD_LETTERED", "DUPLICATE_EVENT_ID_CONFLICT")]
    first = next(i for i in items if i["event_id"] == "e-001")
    assert set(first["source"]) == {"topic", "partition", "offset"}
    assert first["payload"]["tx_id"] == "tx-1c" and isinstance(first["payload"]["amount"], str)
    assert first["event_type"] == "LedgerEntryUpserted" and first["ingested_at"].endswith("Z")


def test_superseded_rows_say_so(client: falcon.testing.TestClient) -> None:
    items = client.simulate_get("/admin/tx/tx-1d/history").json["items"]
    assert {i["event_id"]: i["fate"] for i in items} == {"e-003": "APPLIED", "e-004": "SUPERSEDED"}


def test_order_history_masks_personal_data(client: falcon.testing.TestClient) -> None:
    items = client.simulate_get("/admin/payment-orders/ord-1/history").json["items"]
    assert items and all(i["event_type"] == "PaymentOrderUpserted" for i in items)
    payer = [i["payload"].get("payer_name") for i in items if i["payload"] and "payer_name" in i["payload"]]
    assert payer and all(name.endswith("***") for name in payer)
    assert "SUPERSEDED" in {i["fate"] for i in items}


def test_history_pages_with_a_tamper_evident_cursor(client: falcon.testing.TestClient) -> None:
    whole = client.simulate_get("/admin/tx/tx-1c/history").json["items"]
    first = client.simulate_get("/admin/tx/tx-1c/history", params={"limit": "1"}).json
    assert [i["position"] for i in first["items"]] == [whole[0]["position"]]
    rest = client.simulate_get("/admin/tx/tx-1c/history", params={"cursor": first["next_cursor"]}).json
    assert [i["position"] for i in first["items"] + rest["items"]] == [i["position"] for i in whole]
    other = client.simulate_get("/admin/tx/tx-1d/history", params={"cursor": first["next_cursor"]})
    assert other.status_code == 400 and other.headers["content-type"] == "application/problem+json"
    assert client.simulate_get("/admin/tx/tx-1c/history", params={"limit": "0"}).status_code == 400


def test_an_unknown_entity_has_an_empty_history(client: falcon.testing.TestClient) -> None:
    assert client.simulate_get("/admin/tx/nobody/history").json == {"items": [], "next_cursor": None}


def test_projections_lists_each_version_with_checkpoint_lag_and_dead_letters(
        client: falcon.testing.TestClient) -> None:
    body = client.simulate_get("/admin/projections").json
    versions = {(v["name"], v["version"]): v for v in body["projectors"]}
    assert set(versions) == {("ledger_entries", 1), ("payment_orders", 1), ("payment_ledger_pairs", 1)}
    ledger = versions[("ledger_entries", 1)]
    assert (ledger["status"], ledger["lag_events"], ledger["open_dead_letters"]) == ("ACTIVE", 0, 4)
    assert ledger["checkpoint"] == ledger["head"] > 0 and ledger["code_changed"] is False
    assert body["quality"]["pairs"] == 3


@pytest.mark.parametrize(("method", "path", "headers", "status"), [
    ("POST", "/admin/tx/tx-1c", {}, 405),
    ("DELETE", "/admin/projections", {}, 405),
    ("GET", "/admin/tx/tx-1c", {"Accept": "text/html"}, 406),
    ("GET", "/admin/nothing-here", {}, 404),
])
def test_errors_are_problem_json(client: falcon.testing.TestClient, method: str, path: str,
                                 headers: dict[str, str], status: int) -> None:
    result = client.simulate_request(method, path, headers=headers)
    assert result.status_code == status
    assert result.headers["content-type"] == "application/problem+json"
    assert result.json["status"] == status and result.json["title"]


def test_a_failure_is_a_500_without_internals_and_with_the_correlation_id(
        database_url: str, admin_database_url: str) -> None:
    pool = open_pool(database_url)
    app = api_client(pool, cursor_secret=b"h" * 32)
    with psycopg.connect(admin_database_url) as conn:  # the look-up now fails inside the resource
        conn.execute("REVOKE SELECT ON bo.ledger_entries FROM bo_app")
    try:
        result = app.simulate_get("/admin/tx/tx-1c", headers={"X-Correlation-ID": "corr-500"})
    finally:
        with psycopg.connect(admin_database_url) as conn:
            conn.execute("GRANT SELECT ON bo.ledger_entries TO bo_app")
        pool.close()
    assert result.status_code == 500 and result.headers["content-type"] == "application/problem+json"
    assert result.headers["X-Correlation-ID"] == "corr-500"
    assert "Traceback" not in result.text and "ledger_entries" not in result.text
    assert "permission" not in result.text.lower()


def test_accept_wildcards_and_problem_json_are_fine(client: falcon.testing.TestClient) -> None:
    for accept in ("*/*", "text/html,application/xhtml+xml,*/*;q=0.8", "application/problem+json"):
        assert client.simulate_get("/admin/tx/tx-1c", headers={"Accept": accept}).status_code == 200


def test_metrics_are_prometheus_text_with_lag_dead_letters_and_pairing_quality(
        client: falcon.testing.TestClient) -> None:
    result = client.simulate_get("/metrics", headers={"Accept": "text/plain"})
    assert result.status_code == 200 and result.headers["content-type"].startswith("text/plain")
    text = result.text
    assert 'bo_projector_lag_events{projector="ledger_entries",status="ACTIVE",version="1"} 0.0' in text
    assert 'bo_dead_letters_open{projector="ledger_entries",status="ACTIVE",version="1"} 4.0' in text
    assert "bo_pair_incomplete_ratio 0.6667" in text and "bo_version_missing_cnt 4.0" in text
