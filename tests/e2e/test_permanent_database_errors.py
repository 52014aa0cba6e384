"""Errors that retrying cannot heal stop `bo ingest`, `bo project` and `bo migrate` within
seconds, with one line naming the SQL state and what to do, and a non-zero exit (3).

Each test takes something away from a database of its own, as an operator's mistake would:
a privilege, the migrations the code expects.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from bo.embedded import DevBroker, app_role_url
from bo.migrate import downgrade, upgrade
from bo.publish import publish, read_messages, topic_map
from tests.conftest import SAMPLES, _create_database, _drop_database, random_ref

pytestmark = pytest.mark.e2e

EXIT_PERMANENT = 3
WITHIN_S = 20  # start-up (imports, connecting) included; the error itself is met on the first try


@pytest.fixture
def admin(pg_base_url: str) -> Iterator[str]:
    url = _create_database(pg_base_url)
    upgrade(url)
    yield url
    _drop_database(pg_base_url, url)


def run_bo(args: list[str], env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "bo", *args], env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=120)
    return done, time.monotonic() - started


def stderr_line(done: subprocess.CompletedProcess[str]) -> str:
    """The one line `bo` prints for a person (the JSON log lines are for machines)."""
    lines = [line for line in done.stderr.splitlines() if line.startswith("bo: ")]
    assert len(lines) == 1, done.stderr
    return lines[0]


def env_for(admin: str, tmp_path: Path, **more: str) -> dict[str, str]:
    return {"BO_HOME": str(tmp_path), "BO_DATABASE_URL": app_role_url(admin, role="bo_app_test"),
            "BO_MIGRATION_DATABASE_URL": admin, **more}


def test_bo_project_without_read_access_to_the_log_stops_at_once_naming_the_privilege(
        admin: str, tmp_path: Path) -> None:
    with psycopg.connect(admin) as conn:
        conn.execute("REVOKE SELECT ON bo.event_log FROM bo_app")
    done, seconds = run_bo(["project"], env_for(admin, tmp_path))
    assert done.returncode == EXIT_PERMANENT, done.stderr
    assert seconds < WITHIN_S
    line = stderr_line(done)
    assert line.startswith("bo: SQLSTATE 42501 (insufficient_privilege): permission denied for table event_log")
    assert "lacks a privilege" in line
    assert "database unavailable, retrying" not in done.stderr


def test_bo_ingest_without_the_right_to_append_stops_at_once_naming_the_privilege(
        admin: str, tmp_path: Path, broker: DevBroker) -> None:
    topics = random_ref("ledger"), random_ref("orders")
    publish(broker.bootstrap, read_messages(SAMPLES, topic_map(topics)), total=None)
    with psycopg.connect(admin) as conn:
        conn.execute("REVOKE INSERT ON bo.event_log FROM bo_app")
    done, seconds = run_bo(["ingest"], env_for(
        admin, tmp_path, BO_KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap, BO_TOPIC_LEDGER=topics[0],
        BO_TOPIC_ORDERS=topics[1], BO_KAFKA_GROUP_ID=random_ref("group")))
    assert done.returncode == EXIT_PERMANENT, done.stderr
    assert seconds < WITHIN_S
    assert stderr_line(done).startswith("bo: SQLSTATE 42501 (insufficient_privilege): permission denied")
    with psycopg.connect(admin) as conn:
        assert conn.execute("SELECT count(*) FROM bo.event_log").fetchone() == (0,)


def test_a_database_migrated_by_newer_code_is_refused_by_every_command(admin: str, tmp_path: Path) -> None:
    with psycopg.connect(admin) as conn:
        conn.execute("UPDATE public.alembic_version SET version_num = '0099_from_the_future'")
    for command in (["project"], ["migrate"], ["serve", "--bind", "127.0.0.1:0"]):
        done, seconds = run_bo(command, env_for(admin, tmp_path))
        assert done.returncode == EXIT_PERMANENT, (command, done.stderr)
        assert seconds < WITHIN_S
        line = stderr_line(done)
        assert "migration 0099_from_the_future, which this code does not know" in line, line


def test_a_database_behind_the_code_asks_for_bo_migrate_and_bo_migrate_heals_it(admin: str, tmp_path: Path) -> None:
    with psycopg.connect(admin) as conn:
        head = conn.execute("SELECT version_num FROM public.alembic_version").fetchone()
    downgrade(admin, "0003")
    done, _ = run_bo(["project"], env_for(admin, tmp_path))
    assert done.returncode == EXIT_PERMANENT
    assert f"behind the code's {head[0] if head else ''}" in stderr_line(done)
    assert "Run `bo migrate`" in stderr_line(done)
    migrated, _ = run_bo(["migrate"], env_for(admin, tmp_path))
    assert migrated.returncode == 0, migrated.stderr
    with psycopg.connect(admin) as conn:
        assert conn.execute("SELECT version_num FROM public.alembic_version").fetchone() == head
