"""The audit trail's lanes (migration 0007): concurrent appends do not queue on one chain, every
lane is a chain `bo log verify` re-derives, and a lane's head is never found by reading the table."""

from __future__ import annotations

import threading

import psycopg
import pytest

from api.audit_log import AuditEntry, record, verify_trail
from bo.embedded import app_role_url
from bo.migrate import upgrade
from tests.conftest import _create_database, _drop_database

ENTRY = AuditEntry(subject="auditor-1", name=None, issuer="urn:test", token_id="t-1", roles=["ADMIN_AUDIT"],
                   method="GET", route="/admin/audit-log", path="/admin/audit-log", resource=None, query=None,
                   unmask=False, status=200, result="ALLOWED", client_ip="127.0.0.1", user_agent="pytest",
                   correlation_id="c-1", trace_id=None)


def lanes_in_use(url: str) -> dict[int, int]:
    with psycopg.connect(url) as conn:
        return {int(lane): int(n) for lane, n in
                conn.execute("SELECT lane, count(*) FROM bo.audit_log GROUP BY lane").fetchall()}


def test_an_append_waiting_on_a_busy_lane_takes_the_next_free_one(database_url: str) -> None:
    before = lanes_in_use(database_url)
    with psycopg.connect(database_url) as holder, \
            psycopg.connect(database_url, autocommit=True, options="-c lock_timeout=2s") as other:
        record(holder, ENTRY)  # its transaction stays open: it holds its lane's lock
        held = holder.execute("SELECT lane FROM bo.audit_log ORDER BY id DESC LIMIT 1").fetchone()
        assert held is not None
        record(other, ENTRY)  # does not wait for the holder's commit
        holder.commit()
    after = lanes_in_use(database_url)
    assert sum(after.values()) == sum(before.values()) + 2
    assert len([lane for lane in after if after[lane] > before.get(lane, 0)]) == 2  # two lanes grew


def test_rows_appended_from_many_connections_at_once_chain_in_their_lanes_and_verify_meanwhile(
        database_url: str) -> None:
    start = threading.Barrier(7)
    writing = threading.Event()
    failures: list[BaseException] = []
    reports = []

    def append() -> None:
        try:
            with psycopg.connect(database_url, autocommit=True) as conn:
                start.wait()
                for _ in range(150):
                    record(conn, ENTRY)
        except BaseException as exc:
            failures.append(exc)

    def verify_meanwhile() -> None:  # small pages, many snapshots' worth of time
        with psycopg.connect(database_url) as conn:
            start.wait()
            while writing.is_set():
                reports.append(verify_trail(conn, batch=20))

    writing.set()
    threads = [threading.Thread(target=append) for _ in range(6)]
    verifier = threading.Thread(target=verify_meanwhile)
    for thread in [*threads, verifier]:
        thread.start()
    for thread in threads:
        thread.join()
    writing.clear()
    verifier.join()
    assert not failures
    assert len(lanes_in_use(database_url)) > 1
    with psycopg.connect(database_url) as conn:
        reports.append(verify_trail(conn))
    chain_problems = [p for r in reports for p in r.problems if "row_hash" in p or "lane" in p]
    assert len(reports) > 1 and not chain_problems, chain_problems[:3]


def test_a_transaction_appending_several_rows_keeps_its_first_rows_lane(database_url: str) -> None:
    with psycopg.connect(database_url) as holder, psycopg.connect(database_url) as writer:
        record(holder, ENTRY)  # holds the first free lane
        record(writer, ENTRY)  # so this one takes another
        first = writer.execute("SELECT lane FROM bo.audit_log ORDER BY id DESC LIMIT 1").fetchone()
        holder.commit()  # the holder's lane is free again: a fresh choice would take it
        record(writer, ENTRY)
        second = writer.execute("SELECT lane FROM bo.audit_log ORDER BY id DESC LIMIT 1").fetchone()
        writer.commit()
    assert first == second


def test_a_row_in_a_lane_that_does_not_exist_is_reported(pg_base_url: str) -> None:
    admin = _create_database(pg_base_url)
    try:
        upgrade(admin)
        with psycopg.connect(admin, autocommit=True) as conn:  # a superuser's one-row chain in "lane 9"
            conn.execute("ALTER TABLE bo.audit_log DROP CONSTRAINT audit_log_lane_check")
            conn.execute("ALTER TABLE bo.audit_log DISABLE TRIGGER USER")
            conn.execute("INSERT INTO bo.audit_log (id, lane, at, subject, method, path, status, result, row_hash)"
                         " VALUES (77, 9, now(), 'ghost', 'GET', '/admin/tx/tx-1', 200, 'ALLOWED', '\\x00')")
            conn.execute("UPDATE bo.audit_log SET row_hash = bo.audit_log_row_hash(NULL, r) FROM bo.audit_log r"
                         " WHERE r.id = 77 AND bo.audit_log.id = 77")
            conn.execute("ALTER TABLE bo.audit_log ENABLE TRIGGER USER")
            report = verify_trail(conn)
    finally:
        _drop_database(pg_base_url, admin)
    assert report.broken_id == 77 and any("lane 9, which does not exist" in p for p in report.problems)


def test_a_lane_head_is_read_by_index_even_when_statistics_say_the_trail_is_empty(pg_base_url: str) -> None:
    admin = _create_database(pg_base_url)
    try:
        upgrade(admin)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("ANALYZE bo.audit_log")  # statistics now say: no rows
        with psycopg.connect(app_role_url(admin, role="bo_app_test")) as conn:
            for _ in range(300):  # the chain trigger's plan is made on the first, then reused
                record(conn, ENTRY)
            scans = conn.execute("SELECT pg_stat_get_xact_numscans('bo.audit_log'::regclass)").fetchone()
            conn.rollback()
    finally:
        _drop_database(pg_base_url, admin)
    assert scans is not None and scans[0] == 0  # the trail was never read from end to end


@pytest.mark.parametrize("isolation", ["repeatable read", "serializable"])
def test_an_append_outside_read_committed_is_refused(database_url: str, isolation: str) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute(f"SET TRANSACTION ISOLATION LEVEL {isolation.upper()}")
        with pytest.raises(psycopg.errors.InvalidTransactionState):
            record(conn, ENTRY)

