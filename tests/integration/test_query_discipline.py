"""Query discipline of the API (issue 5): a bounded, constant number of queries per request, and
no sequential scan of a large table in any look-up.

The module's database holds 120,000 log rows, ledger entries, orders and pairs (made in SQL,
then ANALYZEd), so that the planner's choices are the ones production sizes get.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import falcon.testing
import psycopg
import pytest
from psycopg import sql

from eventstore.db import open_pool
from projections import fates, history
from projections import sql as projection_sql
from projections.ledger_entries import queries as ledger_queries
from projections.pairs import queries as pair_queries
from projections.payment_orders import queries as order_queries
from projections.status import SELECT_DATA_LAG
from tests.integration.helpers import api_client

ROWS = 120_000

FILL = [
    f"""INSERT INTO bo.event_log (position, source, topic, "partition", "offset", value_size, ingested_at, event_id,
                                event_type, entity_id, raw_value, row_hash)
        SELECT g, 'kafka', 'bo.ledger-entries.v1', 0, g, 2, now(), 'ev-' || g, 'LedgerEntryUpserted',
               'tx-' || g, '{{}}', '\\x00'
          FROM generate_series(1, {ROWS}) g""",
    f"""INSERT INTO bo.ledger_entries_v1 (tx_id, wallet_id, entry_type, amount, currency, status, status_group,
                                         related_id, related_type, booked_at, event_id, ingested_at, position,
                                         projector_version)
        SELECT 'tx-' || g, 'w-' || (g % 1000), CASE WHEN g % 2 = 0 THEN 'DEBIT' ELSE 'CREDIT' END, g, 'KRW',
               'POSTED', 'SUCCESS', 'ord-' || (g / 2), 'PAYMENT_ORDER', now() - g * interval '1 second', 'ev-' || g,
               now(), g, 1
          FROM generate_series(1, {ROWS}) g""",
    f"""INSERT INTO bo.payment_orders_v1 (order_id, wallet_id, amount, currency, status, status_group, event_id,
                                         ingested_at, position, projector_version)
        SELECT 'ord-' || g, 'w-' || (g % 1000), g, 'KRW', 'PAID', 'SUCCESS', 'evo-' || g, now(), g, 1
          FROM generate_series(1, {ROWS}) g""",
    f"""INSERT INTO bo.payment_ledger_pairs_v1 (order_id, order_present, debit_tx_id, credit_tx_id, pairing_status,
                                               missing, first_seen_at, position, projector_version)
        SELECT 'ord-' || g, true, 'tx-' || (2 * g), 'tx-' || (2 * g + 1), 'COMPLETE', '{{}}', now(), g, 1
          FROM generate_series(1, {ROWS}) g""",
    "ANALYZE bo.event_log, bo.ledger_entries_v1, bo.payment_orders_v1, bo.payment_ledger_pairs_v1",
]


@pytest.fixture(scope="module")
def large(admin_database_url: str, database_url: str) -> str:
    with psycopg.connect(admin_database_url) as conn:
        for statement in FILL:
            conn.execute(statement)
    return database_url


@pytest.fixture(scope="module")
def client(large: str) -> Iterator[falcon.testing.TestClient]:
    pool = open_pool(large)
    yield api_client(pool, cursor_secret=b"q" * 32)
    pool.close()


def seq_scans(plan: dict[str, Any], large_tables: set[str]) -> list[str]:
    found = []
    if plan.get("Node Type") == "Seq Scan" and plan.get("Relation Name") in large_tables:
        found.append(plan["Relation Name"])
    for child in plan.get("Plans", []):
        found += seq_scans(child, large_tables)
    return found


LOOK_UPS: list[tuple[str, Any, dict[str, Any]]] = [
    ("tx", ledger_queries.SELECT_TX, {"tx_id": "tx-777"}),
    ("entries of an order", ledger_queries.SELECT_BY_RELATED, {"related_id": "ord-388"}),
    ("wallet page", ledger_queries.SELECT_WALLET_PAGE, {
        "wallet_id": "w-7", "status_group": None, "from": None, "to": None, "after_at": None, "after_tx": None,
        "limit": 51}),
    ("wallet page, filtered, after a cursor", ledger_queries.SELECT_WALLET_PAGE, {
        "wallet_id": "w-7", "status_group": "SUCCESS", "from": "2020-01-01T00:00:00Z", "to": "2999-01-01T00:00:00Z",
        "after_at": "2999-01-01T00:00:00Z", "after_tx": "tx-9", "limit": 51}),
    ("order", order_queries.SELECT_ORDER, {"order_id": "ord-5"}),
    ("pair", pair_queries.SELECT_PAIR, {"order_id": "ord-5"}),
    ("history", history.SELECT_HISTORY, {
        "name": "ledger_entries", "version": 1, "entity_id": "tx-5", "event_type": "LedgerEntryUpserted",
        "after": 0, "limit": 51}),
    ("history's fates: the entity's own rows", fates.SELECT_OWN_ROWS, {
        "tracking": "ledger_entries:v1", "name": "ledger_entries", "version": 1, "entity_id": "tx-5",
        "event_types": ["LedgerEntryUpserted"]}),
    ("history's fates: other rows of the event ids", projection_sql.SELECT_OTHER_OCCURRENCES, {
        "event_ids": ["ev-5"], "up_to": 5, "taken": [5]}),
    ("data lag", SELECT_DATA_LAG, {"names": ["ledger_entries", "payment_ledger_pairs"]}),
]


@pytest.mark.parametrize(("what", "query", "params"), LOOK_UPS, ids=[what for what, _, _ in LOOK_UPS])
def test_no_look_up_scans_a_large_table(large: str, what: str, query: Any, params: dict[str, Any]) -> None:
    with psycopg.connect(large) as conn:
        large_tables = {r[0] for r in conn.execute(
            "SELECT relname FROM pg_class WHERE relnamespace = 'bo'::regnamespace AND reltuples >= 100000")}
        assert {"event_log", "ledger_entries_v1", "payment_orders_v1", "payment_ledger_pairs_v1"} <= large_tables
        explain = sql.SQL("EXPLAIN (FORMAT JSON) ") + (query if isinstance(query, sql.Composable) else sql.SQL(query))
        row = conn.execute(explain, params).fetchone()
    assert row is not None
    plan = row[0] if isinstance(row[0], list) else json.loads(row[0])
    assert seq_scans(plan[0]["Plan"], large_tables) == [], f"{what}: {json.dumps(plan, indent=1)[:3000]}"


@pytest.fixture
def count_queries(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    issued: list[str] = []
    original = psycopg.Cursor.execute

    def counting(self: psycopg.Cursor[Any], query: Any, params: Any = None, **kwargs: Any) -> Any:
        if str(query):  # the pool's liveness check (an empty query, only after an idle second) is not counted
            issued.append(str(query)[:60])
        return original(self, query, params, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "execute", counting)
    return issued


def queries_for(client: falcon.testing.TestClient, issued: list[str], path: str, **params: str) -> int:
    issued.clear()
    result = client.simulate_get(path, params=params)
    assert result.status_code == 200, result.text
    return len(issued)


def test_each_request_issues_a_small_constant_number_of_queries(
        client: falcon.testing.TestClient, count_queries: list[str]) -> None:
    one = queries_for(client, count_queries, "/admin/wallets/w-7/tx", limit="1")
    many = queries_for(client, count_queries, "/admin/wallets/w-7/tx", limit="200")
    # Every /admin request also writes its audit row (api/audit.py): one INSERT, on the
    # look-up's own connection.
    audit = 1
    assert one == many <= 3 + audit  # page + data lag, whatever the page size: no query per entry
    tx = queries_for(client, count_queries, "/admin/tx/tx-777")
    assert tx <= 3 + audit
    order = queries_for(client, count_queries, "/admin/payment-orders/ord-5")
    assert order <= 5 + audit  # order, pair, its legs (one query for all), data lag: no query per leg
    short = queries_for(client, count_queries, "/admin/tx/tx-5/history", limit="1")
    long = queries_for(client, count_queries, "/admin/tx/tx-5/history", limit="200")
    # the version, the page, and the fates (projections/fates.py): the entity's own rows, and
    # other rows of their event ids (a duplicate's first occurrence)
    assert short == long <= 4 + audit
