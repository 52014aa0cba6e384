"""Tamper evidence against a database superuser: signed checkpoints of both hash chains.

Each attack is one a superuser can make without leaving a broken chain: rewrite a row and
re-chain everything after it, truncate the tail (and fix the stored offsets), restore an
older backup, insert a row with an old date, disable a trigger and enable it again. `bo log
verify` alone passes after each; `bo log verify --checkpoints DIR` fails and names where.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from bo.checkpoints import CheckpointKey
from bo.embedded import app_role_url
from bo.migrate import upgrade
from tests.conftest import SAMPLES, _create_database, _drop_database
from tests.integration.helpers import append_all, sample_records

RECHAIN_LOG = """
    DO $$
    DECLARE previous bytea := NULL; r bo.event_log;
    BEGIN
        FOR r IN SELECT * FROM bo.event_log ORDER BY position LOOP
            previous := bo.event_log_row_hash(previous, r);
            UPDATE bo.event_log SET row_hash = previous WHERE position = r.position;
        END LOOP;
    END $$
"""
RECHAIN_AUDIT = """
    DO $$
    DECLARE previous bytea := NULL; r bo.audit_log;
    BEGIN
        FOR r IN SELECT * FROM bo.audit_log ORDER BY id LOOP
            previous := bo.audit_log_row_hash(previous, r);
            UPDATE bo.audit_log SET row_hash = previous WHERE id = r.id;
        END LOOP;
    END $$
"""


class Stack:
    def __init__(self, admin: str, home: Path) -> None:
        self.admin, self.app = admin, app_role_url(admin, role="bo_app_test")
        self.home, self.checkpoints = home, home / "checkpoints"

    def bo(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "BO_DATABASE_URL": self.app, "BO_HOME": str(self.home)}
        return subprocess.run([sys.executable, "-m", "bo", *args], env=env, capture_output=True, text=True,
                              timeout=120)

    def checkpoint(self) -> None:
        done = self.bo("log", "checkpoint", "--dir", str(self.checkpoints))
        assert done.returncode == 0, done.stderr

    def verify(self, *, with_checkpoints: bool = True) -> subprocess.CompletedProcess[str]:
        extra = ("--checkpoints", str(self.checkpoints)) if with_checkpoints else ()
        return self.bo("log", "verify", *extra)

    def as_superuser(self, *statements: str) -> None:
        with psycopg.connect(self.admin, autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement)


@pytest.fixture
def stack(pg_base_url: str, tmp_path: Path) -> Iterator[Stack]:
    admin = _create_database(pg_base_url)
    upgrade(admin)
    stack = Stack(admin, tmp_path)
    append_all(stack.app, sample_records(SAMPLES))
    with psycopg.connect(stack.app) as conn:
        for n in range(5):
            conn.execute("INSERT INTO bo.audit_log (subject, method, path, status, result)"
                         " VALUES (%s, 'GET', '/admin/tx/tx-1d', 200, 'ALLOWED')", (f"user-{n}",))
    stack.checkpoint()
    assert stack.verify().returncode == 0
    yield stack
    _drop_database(pg_base_url, admin)


def failed(stack: Stack, expected: str, first_bad: str) -> None:
    """The chains alone still verify; the checkpoints do not, and say where."""
    plain = stack.verify(with_checkpoints=False)
    assert plain.returncode == 0, plain.stdout  # the attack left a consistent chain
    checked = stack.verify()
    assert checked.returncode == 1, checked.stdout
    assert "checkpoint verification FAILED" in checked.stdout and expected in checked.stdout, checked.stdout
    assert first_bad in checked.stdout, checked.stdout


def test_a_rewritten_and_rechained_log_row_is_caught(stack: Stack) -> None:
    stack.as_superuser(
        "ALTER TABLE bo.event_log DISABLE TRIGGER USER",
        "UPDATE bo.event_log SET raw_value = convert_to(replace(convert_from(raw_value, 'UTF8'), '12500.00',"
        " '99999.00'), 'UTF8') WHERE position = 3",
        # and the derived document with it, or `bo log verify` alone finds the row (issue 20)
        "UPDATE bo.event_log SET document = convert_from(raw_value, 'UTF8')::jsonb WHERE position = 3",
        RECHAIN_LOG,
        "ALTER TABLE bo.event_log ENABLE TRIGGER USER")  # the trigger disabled and enabled again
    failed(stack, "no longer has the signed hash", "first bad log position: 23")


def test_a_truncated_tail_with_fixed_offsets_is_caught(stack: Stack) -> None:
    stack.as_superuser(
        "ALTER TABLE bo.event_log DISABLE TRIGGER USER",
        "DELETE FROM bo.event_log WHERE position > 20",
        "UPDATE bo.ingest_offsets o SET next_offset = (SELECT max(l.\"offset\") + 1 FROM bo.event_log l"
        " WHERE l.topic = o.topic AND l.\"partition\" = o.\"partition\")",
        "ALTER TABLE bo.event_log ENABLE TRIGGER USER")
    failed(stack, "log position 23 is missing", "first bad log position: 21")


def test_an_older_backup_restored_is_caught(stack: Stack) -> None:
    with psycopg.connect(stack.admin) as conn:  # the "backup": the log as it was at the first checkpoint
        saved = conn.execute("SELECT max(position) FROM bo.event_log").fetchone()
    append_all(stack.app, sample_records(SAMPLES, start_offset=1000))
    stack.checkpoint()
    assert saved is not None
    stack.as_superuser(
        "ALTER TABLE bo.event_log DISABLE TRIGGER USER",
        f"DELETE FROM bo.event_log WHERE position > {int(saved[0])}",
        "UPDATE bo.ingest_offsets o SET next_offset = (SELECT max(l.\"offset\") + 1 FROM bo.event_log l"
        " WHERE l.topic = o.topic AND l.\"partition\" = o.\"partition\")",
        "ALTER TABLE bo.event_log ENABLE TRIGGER USER")
    failed(stack, "log position 46 is missing", f"first bad log position: {int(saved[0]) + 1}")


def test_a_row_inserted_with_an_old_date_is_caught(stack: Stack) -> None:
    stack.as_superuser("""
        INSERT INTO bo.event_log (position, source, topic, "partition", "offset", value_size, ingested_at,
                                  raw_value, row_hash)
        SELECT 24, 'kafka', 'bo.ledger-entries.v1', 0, 5000, 2, '2020-01-01T00:00:00Z', '{}', '\\x00'""",
                       "ALTER TABLE bo.event_log DISABLE TRIGGER USER", RECHAIN_LOG,
                       "ALTER TABLE bo.event_log ENABLE TRIGGER USER")
    failed(stack, "claims a time before it", "first bad log position: 24")


def test_a_rewritten_and_rechained_audit_row_is_caught(stack: Stack) -> None:
    stack.as_superuser(
        "ALTER TABLE bo.audit_log DISABLE TRIGGER USER",
        "UPDATE bo.audit_log SET subject = 'nobody' WHERE subject = 'user-1'",
        RECHAIN_AUDIT,
        "ALTER TABLE bo.audit_log ENABLE TRIGGER USER")
    failed(stack, "audit id 5 no longer has the signed hash", "first bad audit audit row: 5")


def test_a_backdated_audit_row_in_a_lane_empty_at_the_checkpoint_is_caught(stack: Stack) -> None:
    stack.as_superuser(
        "ALTER TABLE bo.audit_log DISABLE TRIGGER USER",
        "INSERT INTO bo.audit_log (id, lane, at, subject, method, path, status, result, row_hash)"
        " VALUES (900, 5, '2020-01-01T00:00:00Z', 'ghost', 'GET', '/admin/tx/tx-1d', 200, 'ALLOWED', '\\x00')",
        "UPDATE bo.audit_log SET row_hash = bo.audit_log_row_hash(NULL, r) FROM bo.audit_log r"
        " WHERE r.id = 900 AND bo.audit_log.id = 900",  # a valid one-row chain of its own lane
        "ALTER TABLE bo.audit_log ENABLE TRIGGER USER")
    failed(stack, "audit id 900 (in a lane without a signed head) claims a time before the checkpoint",
           "first bad audit audit row: 900")


def test_a_backdated_row_after_the_head_of_a_quiet_lane_is_caught(stack: Stack) -> None:
    append_row = ("INSERT INTO bo.audit_log (id, lane, at, subject, method, path, status, result, row_hash)"
                  " VALUES ({id}, 1, now() - interval '{age}', 'ghost', 'GET', '/admin/tx/tx-1d', 200, 'ALLOWED',"
                  " '\\x00')")
    rechain_lane_1 = """
        DO $$
        DECLARE previous bytea := NULL; r bo.audit_log;
        BEGIN
            FOR r IN SELECT * FROM bo.audit_log WHERE lane = 1 ORDER BY id LOOP
                previous := bo.audit_log_row_hash(previous, r);
                UPDATE bo.audit_log SET row_hash = previous WHERE id = r.id;
            END LOOP;
        END $$"""
    # Lane 1 last took a row two days ago; the checkpoint signs that head.
    stack.as_superuser("ALTER TABLE bo.audit_log DISABLE TRIGGER USER", append_row.format(id=800, age="2 days"),
                       rechain_lane_1, "ALTER TABLE bo.audit_log ENABLE TRIGGER USER")
    for old in stack.checkpoints.glob("checkpoint-*.json"):
        old.unlink()
    stack.checkpoint()
    assert stack.verify().returncode == 0
    # After the checkpoint: a row dated yesterday, after lane 1's head but long before the checkpoint.
    stack.as_superuser("ALTER TABLE bo.audit_log DISABLE TRIGGER USER", append_row.format(id=901, age="1 day"),
                       rechain_lane_1, "ALTER TABLE bo.audit_log ENABLE TRIGGER USER")
    failed(stack, "audit id 901, after the checkpoint, claims a time before it", "first bad audit audit row: 901")


def test_a_checkpoint_of_the_previous_format_still_verifies(stack: Stack) -> None:
    (path,) = sorted(stack.checkpoints.glob("checkpoint-*.json"))
    document = json.loads(path.read_text())
    document.pop("signature")
    body = {"format": 1, "key_id": document["key_id"], "at": document["at"],  # one head per chain, no lanes
            "log": {k: v for k, v in document["log"][0].items() if k != "lane"},
            "audit": {k: v for k, v in document["audit"][0].items() if k != "lane"}}
    old = stack.checkpoints / "checkpoint-00000000T000000000000Z.json"
    old.write_text(json.dumps({**body, "signature": CheckpointKey(stack.home).sign(body)}))
    assert stack.verify().returncode == 0
    stack.as_superuser(
        "ALTER TABLE bo.audit_log DISABLE TRIGGER USER",
        "UPDATE bo.audit_log SET subject = 'nobody' WHERE subject = 'user-1'",
        RECHAIN_AUDIT,
        "ALTER TABLE bo.audit_log ENABLE TRIGGER USER")
    checked = stack.verify()
    assert checked.returncode == 1 and "checkpoint-00000000T000000000000Z.json: audit id 5" in checked.stdout


def test_a_forged_or_altered_checkpoint_is_refused(stack: Stack) -> None:
    (path,) = sorted(stack.checkpoints.glob("checkpoint-*.json"))
    document = json.loads(path.read_text())
    document["log"][0]["row_hash"] = "00" * 32
    path.chmod(0o644)
    path.write_text(json.dumps(document))
    checked = stack.verify()
    assert checked.returncode == 1 and "the signature is not the checkpoint key's" in checked.stdout


def test_checkpoint_files_are_read_only_and_never_overwritten(stack: Stack) -> None:
    stack.checkpoint()
    files = sorted(stack.checkpoints.glob("checkpoint-*.json"))
    assert len(files) == 2 and all(f.stat().st_mode & 0o222 == 0 for f in files)
    assert stack.verify().returncode == 0
