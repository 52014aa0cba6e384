"""`?as_of=T` (SPEC 5): a record as the active version would have shown it had the log ended at T."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import falcon.testing
import pytest

from eventstore.db import open_pool
from eventstore.ingest.decode import decode
from eventstore.records import KafkaCoordinates, LogRecord
from tests.conftest import SAMPLES
from tests.integration.helpers import TOPIC_OF, api_client, append_all, rows, runner, sample_records

LEDGER, ORDERS = TOPIC_OF["LedgerEntryUpserted"], TOPIC_OF["PaymentOrderUpserted"]


def event(topic: str, offset: int, event_id: str, event_type: str, **payload: Any) -> LogRecord:
    value = json.dumps({"event_id": event_id, "event_type": event_type, "payload": payload})
    return decode(KafkaCoordinates(topic, 3, offset, None), None, value.encode(), [])


def order(offset: int, version: int, status: str) -> LogRecord:
    return event(ORDERS, offset, f"ao-{version}", "PaymentOrderUpserted", order_id="ord-asof", wallet_id="w-a",
                 amount="100", currency="KRW", status=status, version=version, payer_name="Kim Minji")


def leg(offset: int, tx_id: str, entry_type: str, version: int, status: str) -> LogRecord:
    return event(LEDGER, offset, f"{tx_id}-{version}", "LedgerEntryUpserted", tx_id=tx_id, wallet_id="w-a",
                 entry_type=entry_type, amount="100", currency="KRW", status=status, version=version,
                 related_id="ord-asof")


@pytest.fixture(scope="module")
def history(database_url: str) -> dict[str, Any]:
    append_all(database_url, sample_records(SAMPLES))
    batches = [[order(0, 1, "CREATED"), leg(0, "tx-asof-d", "DEBIT", 1, "PENDING")],
               [leg(1, "tx-asof-c", "CREDIT", 1, "POSTED"), leg(2, "tx-asof-d", "DEBIT", 2, "POSTED")],
               [order(1, 2, "PAID")]]
    times = []
    for batch in batches:
        append_all(database_url, batch)
        times.append(rows(database_url, "SELECT max(ingested_at) AS t FROM bo.event_log")[0]["t"])
    runner(database_url).catch_up()
    return {"times": times}


@pytest.fixture(scope="module")
def client(database_url: str, history: dict[str, Any]) -> Iterator[falcon.testing.TestClient]:
    pool = open_pool(database_url)
    yield api_client(pool, cursor_secret=b"a" * 32)
    pool.close()


def at(client: falcon.testing.TestClient, path: str, when: Any) -> falcon.testing.Result:
    return client.simulate_get(path, params={"as_of": when.isoformat()})


def test_a_transaction_as_it_was_after_each_append(client: falcon.testing.TestClient,
                                                   history: dict[str, Any]) -> None:
    t1, t2, _ = history["times"]
    assert at(client, "/admin/tx/tx-asof-d", t1 - timedelta(microseconds=1)).status_code == 404
    first = at(client, "/admin/tx/tx-asof-d", t1).json
    assert (first["status"], first["version"], first["pairing_status"], first["missing"]) == (
        "PENDING", 1, "PARTIAL", ["CREDIT"])
    assert first["as_of"].endswith("Z") and first["source"]["offset"] == 0
    second = at(client, "/admin/tx/tx-asof-d", t2).json
    assert (second["status"], second["version"], second["pairing_status"], second["paired_tx_id"]) == (
        "POSTED", 2, "COMPLETE", "tx-asof-c")


def test_an_order_as_it_was(client: falcon.testing.TestClient, history: dict[str, Any]) -> None:
    t1, _, t3 = history["times"]
    early = at(client, "/admin/payment-orders/ord-asof", t1).json
    assert early["order"]["status"] == "CREATED" and early["order"]["payer_name"] == "K***"
    assert [e["tx_id"] for e in early["ledger_entries"]] == ["tx-asof-d"]
    assert early["pair"]["pairing_status"] == "PARTIAL" and early["pair"]["completed_at"] is None
    later = at(client, "/admin/payment-orders/ord-asof", t3).json
    assert later["order"]["status"] == "PAID"
    assert later["pair"]["pairing_status"] == "COMPLETE" and later["pair"]["completed_at"] is not None
    assert sorted(e["tx_id"] for e in later["ledger_entries"]) == ["tx-asof-c", "tx-asof-d"]


LIVE_ONLY = ("data_lag_sec", "as_of")


@pytest.mark.parametrize("tx_id", ["tx-1d", "tx-1c", "tx-2d", "tx-nv", "tx-3c", "tx-asof-d"])
def test_as_of_now_equals_what_the_projection_serves(client: falcon.testing.TestClient, tx_id: str,
                                                      database_url: str) -> None:
    now = rows(database_url, "SELECT clock_timestamp() AS t")[0]["t"]
    live = {k: v for k, v in client.simulate_get(f"/admin/tx/{tx_id}").json.items() if k not in LIVE_ONLY}
    past = {k: v for k, v in at(client, f"/admin/tx/{tx_id}", now).json.items() if k not in LIVE_ONLY}
    assert past == live


@pytest.mark.parametrize("order_id", ["ord-1", "ord-2", "ord-3", "ord-asof"])
def test_an_order_as_of_now_equals_what_the_projection_serves(client: falcon.testing.TestClient, order_id: str,
                                                               database_url: str) -> None:
    now = rows(database_url, "SELECT clock_timestamp() AS t")[0]["t"]
    live, past = client.simulate_get(f"/admin/payment-orders/{order_id}").json, \
        at(client, f"/admin/payment-orders/{order_id}", now).json
    assert past["order"] == live["order"] and past["pair"] == live["pair"]
    strip = [{k: v for k, v in e.items() if k not in LIVE_ONLY} for e in live["ledger_entries"]]
    assert [{k: v for k, v in e.items() if k not in LIVE_ONLY} for e in past["ledger_entries"]] == strip


def test_as_of_needs_a_valid_time_and_the_auditor_role(database_url: str, client: falcon.testing.TestClient) -> None:
    bad = client.simulate_get("/admin/tx/tx-1d", params={"as_of": "yesterday"})
    assert bad.status_code == 400 and bad.headers["content-type"] == "application/problem+json"

    pool = open_pool(database_url)
    try:
        reader = api_client(pool, roles=("ADMIN_READ",), cursor_secret=b"a" * 32)
        assert reader.simulate_get("/admin/tx/tx-1d").status_code == 200
        assert reader.simulate_get("/admin/tx/tx-1d", params={"as_of": "2026-01-01T00:00:00Z"}).status_code == 403
    finally:
        pool.close()
