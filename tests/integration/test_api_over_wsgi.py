"""The API through its WSGI app (falcon's test client) against a real, projected database."""

from __future__ import annotations

import json
from collections.abc import Iterator

import falcon.testing
import psycopg
import pytest

from bo.migrate import head_revision
from eventstore.db import open_pool
from eventstore.ingest.decode import decode
from eventstore.records import KafkaCoordinates
from tests.integration.helpers import api_client, append_all, runner

TOPIC = "bo.ledger-entries.v1"


def entry(offset: int, tx_id: str, **payload: object) -> bytes:
    return json.dumps({"event_id": f"w-{offset}", "event_type": "LedgerEntryUpserted", "payload": {
        "tx_id": tx_id, "wallet_id": "w-api", "entry_type": "DEBIT", "amount": "7.00",
        "currency": "USD", "status": "POSTED", **payload}}).encode()


@pytest.fixture(scope="module")
def client(database_url: str) -> Iterator[falcon.testing.TestClient]:
    append_all(database_url, [
        decode(KafkaCoordinates(TOPIC, 0, 0, None), None, entry(0, "tx-typed", related_type="PAYMENT_ORDER"), None),
        decode(KafkaCoordinates(TOPIC, 0, 1, None), None, entry(1, "tx-plain"), None),
    ])
    runner(database_url).catch_up()
    pool = open_pool(database_url)
    yield api_client(pool, cursor_secret=b"s" * 32)
    pool.close()


def test_payment_order_type_without_related_id_is_unpaired(client: falcon.testing.TestClient) -> None:
    body = client.simulate_get("/admin/tx/tx-typed").json
    assert (body["related_type"], body["related_id"]) == ("PAYMENT_ORDER", None)
    assert (body["pairing_status"], body["paired_tx_id"], body["missing"]) == ("UNPAIRED", None, [])


def test_data_lag_is_the_age_of_the_oldest_unapplied_row(client: falcon.testing.TestClient,
                                                         database_url: str) -> None:
    assert client.simulate_get("/admin/tx/tx-plain").json["data_lag_sec"] == 0
    append_all(database_url, [decode(KafkaCoordinates(TOPIC, 0, 2, None), None, entry(2, "tx-late"), None)])
    with psycopg.connect(database_url) as conn:
        conn.execute("SELECT pg_sleep(0.3)")
    lagging = client.simulate_get("/admin/tx/tx-plain").json["data_lag_sec"]
    assert lagging >= 0.3
    runner(database_url).catch_up()
    assert client.simulate_get("/admin/tx/tx-plain").json["data_lag_sec"] == 0


@pytest.mark.parametrize("query", ["limit=%C2%B2", "limit=-1", "limit=1.5", "status_group=pa%C4%B1d"])
def test_odd_parameters_are_400_not_500(client: falcon.testing.TestClient, query: str) -> None:
    result = client.simulate_get("/admin/wallets/w-api/tx", query_string=query)
    assert result.status_code == 400
    assert result.headers["content-type"] == "application/problem+json"


def test_unknown_route_is_a_problem_too(client: falcon.testing.TestClient) -> None:
    result = client.simulate_get("/admin/nothing-here")
    assert result.status_code == 404
    assert result.headers["content-type"] == "application/problem+json"
    assert result.json["status"] == 404


def test_readiness_fails_when_migrations_are_not_current(client: falcon.testing.TestClient,
                                                         admin_database_url: str) -> None:
    assert client.simulate_get("/readyz").status_code == 200
    with psycopg.connect(admin_database_url) as conn:
        conn.execute("UPDATE alembic_version SET version_num = 'stale'")
    try:
        result = client.simulate_get("/readyz")
        assert result.status_code == 503
        assert "stale" in result.json["detail"]
    finally:
        with psycopg.connect(admin_database_url) as conn:
            conn.execute("UPDATE alembic_version SET version_num = %s", (head_revision(),))
