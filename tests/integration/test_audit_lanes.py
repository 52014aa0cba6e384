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


def test_rows_appended_from_many_connections_at_once_chain_in_their_lanes_and_verify(database_url: str) -> None:
    start = threading.Barrier(6)
    failures: list[BaseException] = []

    def append() -> None:
        try:
            with psycopg.connect(database_url, autocommit=True) as conn:
                start.wait()
                for _ in range(150):
                    record(conn, ENTRY)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=append) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
    assert len(lanes_in_use(database_url)) > 1
    with psycopg.connect(database_url) as conn:
        report = verify_trail(conn)
    assert report.broken_id is None and not [p for p in report.problems if "row_hash" in p], report.problems


def test_a_transaction_appending_several_rows_keeps_one_lane(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        for _ in range(3):
            record(conn, ENTRY)
        lanes = conn.execute("SELECT DISTINCT lane FROM bo.audit_log WHERE id IN"
                             " (SELECT id FROM bo.audit_log ORDER BY id DESC LIMIT 3)").fetchall()
    assert len(lanes) == 1


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

