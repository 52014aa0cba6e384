"""The log cannot be changed by the app, and any change by a privileged user is detected."""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg
import pytest

from bo.migrate import upgrade
from eventstore.db import connect
from eventstore.verify import verify
from tests.conftest import SAMPLES
from tests.integration.helpers import append_all, sample_records


@pytest.fixture(scope="module")
def logged(database_url: str) -> str:
    append_all(database_url, sample_records(SAMPLES), batch=4)
    return database_url


def check(url: str) -> tuple[bool, int | None, list[str]]:
    with connect(url) as conn:
        report = verify(conn, batch=7)
    return report.ok, report.broken_position, report.problems


@pytest.mark.parametrize("statement", [
    "UPDATE bo.event_log SET raw_value = 'x' WHERE position = 1",
    "DELETE FROM bo.event_log WHERE position = 1",
    "TRUNCATE bo.event_log",
])
def test_the_app_role_cannot_change_the_log(logged: str, statement: str) -> None:
    with psycopg.connect(logged) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(statement)


@pytest.mark.parametrize("statement", [
    "UPDATE bo.event_log SET raw_value = 'x' WHERE position = 1",
    "DELETE FROM bo.event_log WHERE position = 1",
    "TRUNCATE bo.event_log CASCADE",
])
def test_triggers_refuse_changes_even_from_the_owner(logged: str, admin_database_url: str, statement: str) -> None:
    with psycopg.connect(admin_database_url) as conn, pytest.raises(psycopg.Error, match="append-only"):
        conn.execute(statement)


def test_an_untouched_log_verifies(logged: str) -> None:
    assert check(logged) == (True, None, [])


def test_an_edited_value_is_found_at_its_position(logged: str, as_superuser: psycopg.Connection) -> None:  # type: ignore[type-arg]
    original = as_superuser.execute("SELECT raw_value FROM bo.event_log WHERE position = 9").fetchone()
    as_superuser.execute("UPDATE bo.event_log SET raw_value = 'forged' WHERE position = 9")
    assert check(logged)[:2] == (False, 9)
    as_superuser.execute("UPDATE bo.event_log SET raw_value = %s WHERE position = 9", original)
    assert check(logged)[1] is None  # restored: the chain holds again (the triggers are still off here)


def test_an_edited_readable_column_is_found(logged: str, as_superuser: psycopg.Connection) -> None:  # type: ignore[type-arg]
    as_superuser.execute("UPDATE bo.event_log SET event_id = 'e-999' WHERE event_id = 'e-007'")
    ok, position, problems = check(logged)
    assert not ok and position is not None and any("event_id" in p for p in problems)
    as_superuser.execute("UPDATE bo.event_log SET event_id = 'e-007' WHERE event_id = 'e-999'")
    assert check(logged)[1] is None


def test_a_deleted_row_breaks_the_chain_at_the_next_one(logged: str, as_superuser: psycopg.Connection) -> None:  # type: ignore[type-arg]
    as_superuser.execute("CREATE TEMP TABLE saved AS SELECT * FROM bo.event_log WHERE position = 5")
    as_superuser.execute("DELETE FROM bo.event_log WHERE position = 5")
    assert check(logged)[:2] == (False, 6)
    as_superuser.execute("INSERT INTO bo.event_log SELECT * FROM saved")
    assert check(logged)[1] is None


def test_a_deleted_tail_is_found_through_the_stored_offsets(logged: str, as_superuser: psycopg.Connection) -> None:  # type: ignore[type-arg]
    as_superuser.execute("CREATE TEMP TABLE tail AS SELECT * FROM bo.event_log"
                         " WHERE position = (SELECT max(position) FROM bo.event_log)")
    as_superuser.execute("DELETE FROM bo.event_log WHERE position = (SELECT max(position) FROM bo.event_log)")
    _, _, problems = check(logged)
    assert any("missing from the log" in p for p in problems)
    as_superuser.execute("INSERT INTO bo.event_log SELECT * FROM tail")
    assert not any("missing from the log" in p for p in check(logged)[2])


def test_a_privilege_granted_to_the_app_fails_verification(logged: str, admin_database_url: str) -> None:
    with psycopg.connect(admin_database_url, autocommit=True) as conn:
        conn.execute("GRANT UPDATE ON bo.event_log TO bo_app")
        try:
            ok, _, problems = check(logged)
        finally:
            conn.execute("REVOKE UPDATE ON bo.event_log FROM bo_app")
    assert not ok and any("can change bo.event_log" in p and "UPDATE" in p for p in problems)
    assert check(logged)[0] is True


def test_disabled_triggers_fail_verification(logged: str, as_superuser: psycopg.Connection) -> None:  # type: ignore[type-arg]
    ok, _, problems = check(logged)
    assert not ok and any("trigger" in p for p in problems)


def test_bo_log_verify_exit_code(logged: str, admin_database_url: str) -> None:
    env = {**os.environ, "BO_DATABASE_URL": logged}
    good = subprocess.run([sys.executable, "-m", "bo", "log", "verify"], env=env, capture_output=True, text=True)
    assert good.returncode == 0, good.stdout + good.stderr
    assert "hash chain intact" in good.stdout
    with psycopg.connect(admin_database_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE bo.event_log DISABLE TRIGGER event_log_append_only")
        conn.execute("UPDATE bo.event_log SET raw_key = 'evil' WHERE position = 3")
        conn.execute("ALTER TABLE bo.event_log ENABLE TRIGGER event_log_append_only")
    bad = subprocess.run([sys.executable, "-m", "bo", "log", "verify"], env=env, capture_output=True, text=True)
    assert bad.returncode == 1
    assert "first broken position: 3" in bad.stdout


def test_rows_logged_before_the_chain_existed_are_chained_by_the_migration(empty_database_url: str) -> None:
    """The SQL encoding (migration 0002) and the Python one (eventstore/chain.py) agree."""
    upgrade(empty_database_url, "0001")
    with psycopg.connect(empty_database_url) as conn:
        conn.execute("""
            INSERT INTO bo.event_log (source, topic, "partition", "offset", kafka_timestamp, raw_key, raw_value,
                                      headers, value_size, ingested_at, entity_id)
            VALUES ('kafka', 't', 0, 0, '2026-02-05T09:00:00.123456Z', 'k', '{"a": 1}', '[{"key": "h", "value": "é"}]',
                    8, now(), 'k'),
                   ('kafka', 't', 0, 1, NULL, NULL, NULL, '[]', 0, now(), NULL),
                   ('kafka', 't', 1, 0, '1969-12-31T23:59:59.5Z', '\\xff00', '\\x00ff', '[]', 2, now(), NULL)""")
        conn.execute("""INSERT INTO bo.event_log (source, source_file, source_line, raw_value, value_size, ingested_at)
                        VALUES ('backfill', 'dump.jsonl', 7, 'x', 1, now())""")
    upgrade(empty_database_url)
    assert check(empty_database_url) == (True, None, [])
