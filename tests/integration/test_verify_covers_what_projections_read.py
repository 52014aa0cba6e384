"""`bo log verify` covers every byte a projection reads: the derived `document` and the kept
verdicts as well as the hash chain (issue 20). Each attack is the one tried from outside."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest

from bo.embedded import app_role_url
from bo.migrate import downgrade, upgrade
from eventstore.db import connect
from eventstore.verify import verify
from projections.verdicts_verify import verify_verdicts
from tests.conftest import login_url
from tests.integration.helpers import append_all, rows, runner
from tests.integration.test_event_verdicts import generated


@pytest.fixture(scope="module")
def projected(database_url: str) -> str:
    append_all(database_url, generated(120, seed=20, first_payment=0, partition=0))
    runner(database_url).catch_up()
    return database_url


def bo_log_verify(url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bo", "log", "verify"], env={**os.environ, "BO_DATABASE_URL": url},
                          capture_output=True, text=True, timeout=120)


def a_valid_ledger_position(url: str) -> int:
    return int(rows(url, "SELECT min(position) AS p FROM bo.event_verdicts"
                         " WHERE verdict = 'VALID' AND event_type = 'LedgerEntryUpserted'")[0]["p"])


def test_an_untouched_projected_log_verifies_verdicts_included(projected: str) -> None:
    done = bo_log_verify(projected)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "verdicts verified" in done.stdout and "kept verdicts equal to their re-derivation" in done.stdout


def test_a_verdict_edited_by_the_app_role_fails_verify_naming_its_position(projected: str) -> None:
    position = a_valid_ledger_position(projected)
    with psycopg.connect(projected, autocommit=True) as conn:
        original = conn.execute("SELECT amount::text FROM bo.event_verdicts WHERE position = %s", (position,)).fetchone()
        conn.execute("UPDATE bo.event_verdicts SET amount = 1.00 WHERE position = %s", (position,))
    try:
        done = bo_log_verify(projected)
        assert done.returncode == 1
        assert f"position {position}: the kept verdict's amount is not what judging the log row gives" in done.stdout
        assert f"first bad verdict position: {position}" in done.stdout
    finally:
        with psycopg.connect(projected, autocommit=True) as conn:
            conn.execute("UPDATE bo.event_verdicts SET amount = %s::numeric WHERE position = %s",
                         (original[0] if original else None, position))
    assert bo_log_verify(projected).returncode == 0


def test_a_scale_changed_in_a_verdict_is_an_edit(projected: str) -> None:
    position = a_valid_ledger_position(projected)
    with psycopg.connect(projected, autocommit=True) as conn:
        conn.execute("UPDATE bo.event_verdicts SET amount = amount::numeric(40, 12) WHERE position = %s", (position,))
    with connect(projected) as conn:
        report = verify_verdicts(conn, batch_size=50)
    with psycopg.connect(projected, autocommit=True) as conn:
        conn.execute("UPDATE bo.event_verdicts SET amount = trim_scale(amount) WHERE position = %s", (position,))
    assert not report.ok and report.first_bad == position


@contextmanager
def verdict_deleted(admin_url: str, position: int) -> Iterator[None]:
    """The kept verdict of `position` deleted (by a superuser) for the length of the block."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        saved = conn.execute("SELECT * FROM bo.event_verdicts WHERE position = %s", (position,)).fetchall()
        conn.execute("DELETE FROM bo.event_verdicts WHERE position = %s", (position,))
        try:
            yield
        finally:
            for row in saved:
                conn.execute(psycopg.sql.SQL("INSERT INTO bo.event_verdicts VALUES ({})").format(
                    psycopg.sql.SQL(", ").join(psycopg.sql.Placeholder() * len(row))), row)


def test_a_deleted_verdict_below_the_checkpoints_fails_verify(projected: str, admin_database_url: str) -> None:
    position = a_valid_ledger_position(projected) + 3
    with verdict_deleted(admin_database_url, position), connect(projected) as conn:
        report = verify_verdicts(conn, batch_size=64)
    assert not report.ok and report.first_bad == position
    assert any("no verdict is kept" in p for p in report.problems)


def test_a_document_edited_by_a_superuser_without_rechaining_fails_verify(
        projected: str, admin_database_url: str, as_superuser: psycopg.Connection) -> None:  # type: ignore[type-arg]
    position = a_valid_ledger_position(projected) + 1
    as_superuser.execute("CREATE TEMP TABLE saved AS SELECT * FROM bo.event_log WHERE position = %s", (position,))
    as_superuser.execute("""UPDATE bo.event_log SET document = jsonb_set(document, '{payload,amount}', '"7777777.00"')
                             WHERE position = %s""", (position,))
    try:
        with verdict_deleted(admin_database_url, position), connect(projected) as conn:
            report = verify(conn, batch=17)
        assert report.broken_position == position
        assert f"position {position}: document is not the raw value parsed (edited, or removed)" in report.problems
    finally:
        as_superuser.execute("UPDATE bo.event_log l SET document = s.document FROM saved s WHERE l.position = s.position")


@pytest.mark.parametrize("document", [
    '{"event_type": "LedgerEntryUpserted"}',
    "[]",
    '"not even an object"',
])
def test_any_document_other_than_the_raw_value_is_found(projected: str, document: str,
                                                        as_superuser: psycopg.Connection) -> None:  # type: ignore[type-arg]
    position = a_valid_ledger_position(projected) + 2
    as_superuser.execute("CREATE TEMP TABLE saved AS SELECT * FROM bo.event_log WHERE position = %s", (position,))
    as_superuser.execute("UPDATE bo.event_log SET document = %s::jsonb WHERE position = %s", (document, position))
    try:
        with connect(projected) as conn:
            assert verify(conn).broken_position == position
    finally:
        as_superuser.execute("UPDATE bo.event_log l SET document = s.document FROM saved s WHERE l.position = s.position")


def test_a_removed_document_is_judged_from_the_raw_bytes_to_the_same_verdict(
        projected: str, as_superuser: psycopg.Connection) -> None:  # type: ignore[type-arg]
    """A row may lack its document (the append stores a batch without them when PostgreSQL
    refuses one): projections then judge it from the hashed raw bytes, so nothing unverified
    is read, and the verdict judged again equals the kept one."""
    position = a_valid_ledger_position(projected) + 2
    as_superuser.execute("CREATE TEMP TABLE saved AS SELECT * FROM bo.event_log WHERE position = %s", (position,))
    as_superuser.execute("UPDATE bo.event_log SET document = NULL WHERE position = %s", (position,))
    try:
        with connect(projected) as conn:
            assert verify(conn).broken_position is None
            assert verify_verdicts(conn, batch_size=100).ok
    finally:
        as_superuser.execute("UPDATE bo.event_log l SET document = s.document FROM saved s WHERE l.position = s.position")


def test_a_document_added_to_a_row_that_is_not_json_is_found(projected: str,
                                                            as_superuser: psycopg.Connection) -> None:  # type: ignore[type-arg]
    position = int(rows(projected, "SELECT min(position) AS p FROM bo.event_log WHERE document IS NULL")[0]["p"])
    as_superuser.execute("UPDATE bo.event_log SET document = '{}' WHERE position = %s", (position,))
    try:
        with connect(projected) as conn:
            report = verify(conn)
        assert report.broken_position == position and any("not a JSON object" in p for p in report.problems)
    finally:
        as_superuser.execute("UPDATE bo.event_log SET document = NULL WHERE position = %s", (position,))


@pytest.mark.parametrize("group", ["bo_api", "bo_ingest"])
def test_only_the_projection_roles_may_write_the_verdicts(projected: str, admin_database_url: str, group: str) -> None:
    role = f"{group}_verdicts_test"
    with psycopg.connect(admin_database_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
            conn.execute(psycopg.sql.SQL("CREATE ROLE {} LOGIN IN ROLE {}").format(
                psycopg.sql.Identifier(role), psycopg.sql.Identifier(group)))
    for statement in ("UPDATE bo.event_verdicts SET amount = 1 WHERE position = 1",
                      "DELETE FROM bo.event_verdicts WHERE position = 1",
                      "INSERT INTO bo.event_verdicts (position, contract, ingested_at, verdict)"
                      " VALUES (999999, 'x', now(), 'VALID')"):
        with psycopg.connect(login_url(projected, role)) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement)


def test_a_log_projected_before_verdicts_were_kept_verifies_and_later_deletions_are_found(
        empty_database_url: str) -> None:
    upgrade(empty_database_url)
    app = app_role_url(empty_database_url, role="bo_app_test")
    append_all(app, generated(30, seed=5, first_payment=0, partition=0))
    runner(app).catch_up()
    downgrade(empty_database_url, "0007")  # as it was before migration 0008: applied, nothing kept
    upgrade(empty_database_url)
    with connect(app) as conn:
        assert verify_verdicts(conn).ok
    append_all(app, generated(30, seed=6, first_payment=1000, partition=1))
    runner(app).catch_up()
    kept = int(rows(app, "SELECT max(position) AS p FROM bo.verdicts_kept_from")[0]["p"])
    later = int(rows(app, "SELECT min(position) AS p FROM bo.event_verdicts")[0]["p"])
    assert later > kept > 0
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM bo.event_verdicts WHERE position = %s", (later,))
    with connect(app) as conn:
        report = verify_verdicts(conn)
    assert not report.ok and report.first_bad == later
