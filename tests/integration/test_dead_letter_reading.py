"""`bo dlq list` and `bo dlq show`: dead letters filtered by reason and projector, with their log rows."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import psycopg
import pytest

from replay.dead_letters import DeadLetterFilter, list_dead_letters, show_dead_letter
from tests.conftest import SAMPLES
from tests.integration.helpers import append_all, runner, sample_records


@pytest.fixture(scope="module")
def projected(database_url: str) -> str:
    append_all(database_url, sample_records(SAMPLES))
    runner(database_url).catch_up()
    return database_url


def test_filters_by_reason_and_projector(projected: str) -> None:
    with psycopg.connect(projected) as conn:
        violations = list_dead_letters(conn, DeadLetterFilter(reason="SCHEMA_VIOLATION", projector="ledger_entries"))
        everything = list_dead_letters(conn, DeadLetterFilter(status=None))
        page = list_dead_letters(conn, DeadLetterFilter(status=None), after=everything[2]["id"], limit=2)
    assert sorted(d["detail"].split(":")[0] for d in violations) == ["payload.amount", "payload.entry_type"]
    assert len(everything) == 4 + 3 + 7  # ledger_entries, payment_orders, payment_ledger_pairs
    assert [d["id"] for d in page] == [d["id"] for d in everything[3:5]]


def test_show_gives_the_log_row_with_readable_bytes_only_when_unmasked(projected: str) -> None:
    with psycopg.connect(projected) as conn:
        (invalid,) = list_dead_letters(conn, DeadLetterFilter(reason="INVALID_JSON", projector="ledger_entries"))
        shown = show_dead_letter(conn, invalid["id"], unmask=True)
        masked = show_dead_letter(conn, invalid["id"])
        assert show_dead_letter(conn, 10**9) is None
    assert shown is not None and masked is not None
    assert shown["raw_value"] == {"text": "{not json"} and shown["raw_key"] == {"text": "tx-bad-1"}
    assert (shown["topic"], shown["source"]) == ("bo.ledger-entries.v1", "kafka")
    assert "not json" not in json.dumps(masked["raw_value"]) and "9 bytes, sha256" in masked["raw_value"]["not_shown"]


def test_the_cli_lists_and_shows(projected: str) -> None:
    env = {**os.environ, "BO_DATABASE_URL": projected}
    listed = subprocess.run([sys.executable, "-m", "bo", "dlq", "list", "--reason", "UNKNOWN_EVENT_TYPE"], env=env,
                            capture_output=True, text=True)
    assert listed.returncode == 0 and "2 dead letter(s)" in listed.stdout  # payment_orders and the pairs
    first_id = listed.stdout.split()[0]
    shown = subprocess.run([sys.executable, "-m", "bo", "dlq", "show", first_id], env=env, capture_output=True,
                           text=True)
    assert shown.returncode == 0 and json.loads(shown.stdout)["reason"] == "UNKNOWN_EVENT_TYPE"
    missing = subprocess.run([sys.executable, "-m", "bo", "dlq", "show", "999999999"], env=env, capture_output=True,
                             text=True)
    assert missing.returncode == 1
