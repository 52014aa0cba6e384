"""A projection batch reads the log rows it needs, not the whole log, whatever the statistics say.

Just after a bulk load or a backfill, the log has never been analysed. PostgreSQL then
estimates `event_id = ANY(<a few hundred ids>)` at most of the table, and it read the whole log
to find the earlier occurrences of a batch's repeated event ids (decisions §63).
"""

from __future__ import annotations

import json

import psycopg

from bo.embedded import app_role_url
from bo.migrate import upgrade
from eventstore import log, sql
from eventstore.ingest.decode import decode
from eventstore.records import KafkaCoordinates, LogRecord
from projections import batch
from tests.conftest import _create_database, _drop_database
from tests.integration.helpers import append_all

LOGGED = 40_000
REPEATED = 400


def ledger_message(offset: int, n: int) -> LogRecord:
    value = {"event_id": f"ev-{n}", "event_type": "LedgerEntryUpserted", "payload": {
        "tx_id": f"tx-{n}", "wallet_id": f"w-{n % 50}", "entry_type": "DEBIT", "amount": "5", "currency": "KRW",
        "status": "POSTED", "version": 1}}
    return decode(KafkaCoordinates("bo.ledger-entries.v1", 0, offset, None), f"tx-{n}".encode(),
                  json.dumps(value).encode(), None)


def test_repeated_event_ids_are_looked_up_by_index_on_a_log_never_analysed(pg_base_url: str) -> None:
    admin = _create_database(pg_base_url)
    try:
        upgrade(admin)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("ALTER TABLE bo.event_log SET (autovacuum_enabled = false)")  # no statistics, ever
        url = app_role_url(admin)
        # Every event once, then a batch in which each event repeats one logged long before.
        append_all(url, [ledger_message(n, n) for n in range(LOGGED)], batch=5000)
        append_all(url, [ledger_message(LOGGED + n, n * 97) for n in range(REPEATED)])
        with psycopg.connect(url) as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
            read = batch.prepare(cur, batch.Rows(after=LOGGED, up_to=LOGGED + REPEATED))
            duplicates = cur.execute("SELECT count(*) AS n FROM bo_batch WHERE occurrence = 'DUPLICATE'").fetchone()
            touched = cur.execute("""
                SELECT pg_stat_get_xact_tuples_returned('bo.event_log'::regclass)
                     + pg_stat_get_xact_tuples_fetched('bo.event_log'::regclass) AS n""").fetchone()
            conn.rollback()
    finally:
        _drop_database(pg_base_url, admin)
    assert read == REPEATED
    assert duplicates is not None and duplicates["n"] == REPEATED  # the earlier occurrences were all found
    # Each of the batch's rows is read a few times (fast path, repeated ids, their earlier rows),
    # never the 40,000 rows before them.
    assert touched is not None and touched["n"] < 20 * REPEATED


def test_the_log_head_is_read_by_index_even_when_statistics_say_the_log_is_empty(pg_base_url: str) -> None:
    admin = _create_database(pg_base_url)
    try:
        upgrade(admin)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("ANALYZE bo.event_log")  # statistics now say: no rows
            conn.execute("ALTER TABLE bo.event_log SET (autovacuum_enabled = false)")
        with psycopg.connect(app_role_url(admin)) as conn:
            for n in range(20):  # psycopg prepares a statement on its fifth run, and keeps that plan
                log.append(conn, "test", [ledger_message(m, m) for m in range(n * 500, (n + 1) * 500)])
            prepared = conn.execute("SELECT name FROM pg_prepared_statements WHERE statement = %s",
                                    (sql.SELECT_CHAIN_HEAD,)).fetchone()
            assert prepared is not None
            plan = "\n".join(r[0] for r in conn.execute(f'EXPLAIN EXECUTE "{prepared[0]}"').fetchall())
            conn.rollback()
    finally:
        _drop_database(pg_base_url, admin)
    assert "Seq Scan" not in plan, plan
