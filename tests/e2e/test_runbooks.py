"""docs/runbooks, walked: each runbook's commands, as an operator types them, against the
embedded stack (or PostgreSQL 15), through the real `bo` command, psql, pg_dump and pg_restore.

projection-lifecycle.md has its own walk (test_projection_runbook.py); scaling.md's are
tests/faults/test_consumer_group.py and tests/integration/test_read_replica.py.
"""

from __future__ import annotations

import csv
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import falcon.testing
import psycopg
import pytest
from psycopg import sql

from bo.embedded import DevBroker
from eventstore.db import open_pool
from tests.conftest import SAMPLES, _create_database, _drop_database, free_port, login_url
from tests.e2e.operator import bo, scalar, wait_for, write_dump
from tests.integration.helpers import api_client, bearer
from tests.postgres import programs

pytestmark = pytest.mark.e2e


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, f"{done.args}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "BO_DATABASE_URL": database_url, "BO_HOME": str(tmp_path / "home"), "BO_LOG_LEVEL": "WARNING"}


@pytest.fixture
def projecting(env: dict[str, str], tmp_path: Path) -> Iterator[None]:
    """`bo project` running in the background, as the runbooks assume."""
    log = (tmp_path / "project.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "bo", "project"], env=env, stdout=log, stderr=log)
    yield
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)
    log.close()


def caught_up(url: str) -> bool:
    head = scalar(url, "SELECT coalesce(max(position), 0) FROM bo.event_log")
    slowest = scalar(url, "SELECT min(notification_id) FROM bo.projection_tracking WHERE application_name LIKE '%:v%'")
    return slowest is not None and slowest >= head


def test_backfill_runbook(env: dict[str, str], database_url: str, projecting: None, tmp_path: Path) -> None:
    dump = tmp_path / "ledger-2025.jsonl"
    write_dump(dump, payments=60, seed=11)
    with dump.open("a", encoding="utf-8") as out:
        out.write("this line is not JSON\n")
    lines = sum(1 for _ in dump.open(encoding="utf-8"))

    first = ok(bo(env, "backfill", str(dump)))
    assert re.search(rf"{lines} lines, {lines} appended, 0 already in the log", first), first
    assert "1 lines could not be read" in first
    again = ok(bo(env, "backfill", str(dump)))  # step 2: run twice, appended once
    assert re.search(rf"{lines} lines, 0 appended, {lines} already in the log", again), again

    wait_for(lambda: caught_up(database_url), timeout=90, what="the projectors to take the backfill")
    status = ok(bo(env, "projections", "status"))
    assert "ledger_entries" in status and "ACTIVE" in status
    dead = ok(bo(env, "dlq", "list"))
    assert "INVALID_JSON" in dead  # step 4: the unreadable line, refused and kept


def metric(text: str, name: str) -> list[float]:
    return [float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name)]


def test_consumer_lag_runbook(env: dict[str, str], broker: DevBroker, tmp_path: Path) -> None:
    topics = (f"ledger-{time.monotonic_ns()}", f"orders-{time.monotonic_ns()}")
    ingest_env = {**env, "BO_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap, "BO_TOPIC_LEDGER": topics[0],
                  "BO_TOPIC_ORDERS": topics[1], "BO_KAFKA_GROUP_ID": f"runbook-{time.monotonic_ns()}"}
    ok(bo(ingest_env, "publish", str(SAMPLES)))
    health, metrics = free_port(), free_port()
    log = (tmp_path / "ingest.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "bo", "ingest", "--health-port", str(health),
                                "--metrics-port", str(metrics)], env=ingest_env, stdout=log, stderr=log)
    try:
        wait_for(lambda: bo(ingest_env, "probe", f"http://127.0.0.1:{health}/healthz").returncode == 0,
                 what="ingest's /healthz")  # step 1

        def lag_drained() -> bool:
            with urllib.request.urlopen(f"http://127.0.0.1:{metrics}/metrics", timeout=5) as resp:
                text = resp.read().decode()
            lags = metric(text, "bo_ingest_consumer_lag{")
            return bool(lags) and max(lags) == 0 and bool(metric(text, "bo_ingest_seconds_since_last_append"))

        wait_for(lag_drained, what="the consumer lag to fall to 0")  # step 5
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        log.close()
    assert "log verified" in ok(bo(env, "log", "verify"))


def test_data_mismatch_checklist(env: dict[str, str], database_url: str, projecting: None) -> None:
    ok(bo(env, "backfill", str(SAMPLES)))
    wait_for(lambda: caught_up(database_url), what="the projectors")
    assert "ACTIVE" in ok(bo(env, "projections", "status"))  # 1
    assert "log verified" in ok(bo(env, "log", "verify"))  # 2
    history = ok(bo(env, "history", "tx", "tx-1d"))  # 3
    assert "APPLIED" in history
    pool = open_pool(database_url)
    try:
        order = api_client(pool).simulate_get("/admin/payment-orders/ord-1")  # 4
        assert order.status_code == 200, order.text
        assert order.json["pair"]["pairing_status"] in ("COMPLETE", "PARTIAL", "MISMATCH")
    finally:
        pool.close()
    ok(bo(env, "dlq", "list"))  # 6


def test_cursor_secret_rotation(database_url: str, env: dict[str, str], projecting: None) -> None:
    ok(bo(env, "backfill", str(SAMPLES)))
    wait_for(lambda: caught_up(database_url), what="the projectors")
    pool = open_pool(database_url)
    try:
        path = "/admin/wallets/w-payer/tx"
        old = api_client(pool, cursor_secret=b"a" * 32).simulate_get(path, params={"limit": "1"})
        cursor = old.json["next_cursor"]
        assert cursor
        rotated = api_client(pool, cursor_secret=b"b" * 32)
        refused = rotated.simulate_get(path, params={"limit": "1", "cursor": cursor})
        assert refused.status_code == 400 and "cursor" in refused.json["detail"]
        fresh = rotated.simulate_get(path, params={"limit": "1"}).json["next_cursor"]
        assert rotated.simulate_get(path, params={"limit": "1", "cursor": fresh}).status_code == 200
    finally:
        pool.close()


def test_database_credential_rotation(admin_database_url: str) -> None:
    old, new = "bo_api_svc_runbook_old", "bo_api_svc_runbook_new"
    with psycopg.connect(admin_database_url, autocommit=True) as conn:
        for role in (old, new):
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN IN ROLE bo_api").format(sql.Identifier(old)))
    old_pool = open_pool(login_url(admin_database_url, old))
    try:
        old_client = falcon.testing.TestClient(api_client(old_pool).app)
        assert old_client.simulate_get("/readyz").status_code == 200
        with psycopg.connect(admin_database_url, autocommit=True) as conn:  # the runbook's SQL
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN IN ROLE bo_api").format(sql.Identifier(new)))
        new_pool = open_pool(login_url(admin_database_url, new))
        try:
            assert falcon.testing.TestClient(api_client(new_pool).app).simulate_get("/readyz").status_code == 200
        finally:
            new_pool.close()
        with psycopg.connect(admin_database_url, autocommit=True) as conn:
            conn.execute(sql.SQL("ALTER ROLE {} NOLOGIN").format(sql.Identifier(old)))
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (old,))
        wait_for(lambda: old_client.simulate_get("/readyz").status_code == 503, timeout=30,
                 what="the retired login to be refused")
        assert "refused" in old_client.simulate_get("/readyz").json["detail"]
    finally:
        old_pool.close()
        with psycopg.connect(admin_database_url, autocommit=True) as conn:
            for role in (old, new):
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def test_audit_archive_runbook(env: dict[str, str], database_url: str, tmp_path: Path) -> None:
    pool = open_pool(database_url)
    try:
        client = api_client(pool)
        for path in ("/admin/tx/tx-1d", "/admin/tx/none", "/admin/projections"):
            client.simulate_get(path, headers=bearer("ADMIN_READ", subject="archivist"))
    finally:
        pool.close()
    checkpoints = tmp_path / "checkpoints"
    ok(bo(env, "log", "checkpoint", "--dir", str(checkpoints)))  # 1
    month = "at >= now() - interval '31 days' AND at < now() + interval '1 day'"
    export = tmp_path / "audit-month.csv"
    psql = programs() / "psql"
    ok(subprocess.run([str(psql), database_url, "-v", "ON_ERROR_STOP=1", "-c",
                       f"\\copy (SELECT * FROM bo.audit_log WHERE {month} ORDER BY id) TO '{export}'"
                       " WITH (FORMAT csv, HEADER)"], capture_output=True, text=True, timeout=60))  # 2
    assert "verified" in ok(bo(env, "log", "verify", "--checkpoints", str(checkpoints)))  # 3
    counted = int(ok(subprocess.run([str(psql), database_url, "-Atc",
                                      f"SELECT count(*) FROM bo.audit_log WHERE {month}"],
                                     capture_output=True, text=True, timeout=60)).strip())
    with export.open(newline="") as handle:
        exported = list(csv.DictReader(handle))
    assert len(exported) == counted >= 3
    assert all(row["row_hash"] and row["lane"] for row in exported)


@pytest.fixture
def restored(pg_base_url: str) -> Iterator[str]:
    url = _create_database(pg_base_url)
    yield url
    _drop_database(pg_base_url, url)


def test_restore_from_backup_runbook(env: dict[str, str], database_url: str, admin_database_url: str,
                                     restored: str, tmp_path: Path) -> None:
    ok(bo(env, "backfill", str(SAMPLES)))
    checkpoints = tmp_path / "checkpoints"
    ok(bo(env, "log", "checkpoint", "--dir", str(checkpoints)))
    dump = tmp_path / "bo.dump"
    ok(subprocess.run([str(programs() / "pg_dump"), "--format=custom", "--file", str(dump), admin_database_url],
                      capture_output=True, text=True, timeout=300))
    ok(subprocess.run([str(programs() / "pg_restore"), "--dbname", restored, "--no-owner", "--exit-on-error",
                       str(dump)], capture_output=True, text=True, timeout=300))  # 1

    restored_env = {**env, "BO_DATABASE_URL": restored}
    proven = ok(bo(restored_env, "log", "verify", "--checkpoints", str(checkpoints)))  # 2
    assert "log verified" in proven and "audit trail verified" in proven

    with psycopg.connect(restored, autocommit=True) as conn:  # a backup that was tampered with
        conn.execute("ALTER TABLE bo.event_log DISABLE TRIGGER USER")
        conn.execute("UPDATE bo.event_log SET raw_value = raw_value || ' '::bytea"
                     " WHERE position = (SELECT min(position) FROM bo.event_log)")
        conn.execute("ALTER TABLE bo.event_log ENABLE TRIGGER USER")
    tampered = bo(restored_env, "log", "verify", "--checkpoints", str(checkpoints))
    assert tampered.returncode != 0, tampered.stdout
