"""The dead-letter story of SPEC 4.4: a projector bug dead-letters valid events; after the fix,
`replay` resolves them and the read tables equal a build from position 0 of the same log."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from bo.embedded import app_role_url
from bo.migrate import upgrade
from eventstore.ingest.decode import decode
from eventstore.records import KafkaCoordinates, LogRecord
from projections import batch as batch_module
from projections.contract import Rejection, ValidEvent, classify
from projections.runner import PYTHON_ENGINE
from projections.tracking import datastore_for
from replay.dead_letters import DeadLetterFilter, replay_dead_letters
from tests.conftest import SAMPLES, _create_database, _drop_database
from tests.fates import all_fates
from tests.integration.helpers import TOPIC_OF, append_all, rows, runner, sample_records
from tests.integration.test_projection_lifecycle import generated_records

LEDGER_TOPIC = TOPIC_OF["LedgerEntryUpserted"]
TABLES = ("ledger_entries_v1", "payment_orders_v1", "payment_ledger_pairs_v1", "payment_ledger_pairs_v1_members")


def rejects_jpy(raw_value: bytes | None) -> ValidEvent | Rejection:
    """The bug: a projector release that refuses a valid currency."""
    verdict = classify(raw_value)
    if isinstance(verdict, ValidEvent) and verdict.payload.currency == "JPY":
        return Rejection("SCHEMA_VIOLATION", "payload.currency: JPY is not supported", verdict.envelope.event_id)
    return verdict


def ledger(event_id: str, offset: int, **payload: Any) -> LogRecord:
    value = json.dumps({"event_id": event_id, "event_type": "LedgerEntryUpserted", "payload": {
        "wallet_id": "w-fix", "status": "POSTED", "amount": "10", **payload}})
    return decode(KafkaCoordinates(LEDGER_TOPIC, 7, offset, None), None, value.encode(), [])


# A member whose first version is in the refused currency: a build from position 0 applies it
# first (first_seen_at, completed_at and version_missing_cnt count it); the buggy run did not.
HISTORY = [
    [ledger("fix-1", 0, tx_id="tx-fix-d", entry_type="DEBIT", currency="JPY", version=1, related_id="ord-fix"),
     ledger("nv-1", 1, tx_id="tx-fix-nv", entry_type="DEBIT", currency="JPY")],
    [ledger("fix-2", 2, tx_id="tx-fix-c", entry_type="CREDIT", currency="KRW", version=1, related_id="ord-fix"),
     ledger("fix-3", 3, tx_id="tx-fix-d", entry_type="DEBIT", currency="KRW", version=2, related_id="ord-fix"),
     ledger("nv-2", 4, tx_id="tx-fix-nv", entry_type="DEBIT", currency="KRW")],
]


def contents(url: str) -> dict[str, Any]:
    """The read tables, and every row's fate as the history derives it."""
    return {t: rows(url, f"SELECT * FROM bo.{t} t ORDER BY t::text") for t in TABLES} | {
        f"{name} fates": all_fates(url, name) for name in ("ledger_entries", "payment_orders")}


@pytest.fixture
def clean_copy(pg_base_url: str) -> Iterator[str]:
    admin = _create_database(pg_base_url)
    upgrade(admin)
    yield admin
    _drop_database(pg_base_url, admin)


def test_replay_after_the_fix_resolves_the_dead_letters_and_equals_a_clean_build(
        database_url: str, admin_database_url: str, clean_copy: str, monkeypatch: pytest.MonkeyPatch) -> None:
    append_all(database_url, sample_records(SAMPLES) + generated_records(200, start_offset=0))
    for batch in HISTORY:
        append_all(database_url, batch)
    with monkeypatch.context() as bug:  # the buggy release (run on the Python engine, where it is easy to plant)
        bug.setattr(batch_module, "classify", rejects_jpy)
        runner(database_url, engine=PYTHON_ENGINE).catch_up()
    bugged = rows(database_url, "SELECT projector, position FROM bo.dead_letters"
                                " WHERE detail = 'payload.currency: JPY is not supported' AND status = 'OPEN'")
    assert {r["projector"] for r in bugged} == {"ledger_entries", "payment_orders", "payment_ledger_pairs"}
    genuine = rows(database_url, "SELECT count(*) AS n FROM bo.dead_letters"
                                 " WHERE detail <> 'payload.currency: JPY is not supported'")[0]["n"]
    assert genuine > 0

    report = replay_dead_letters(datastore_for(database_url), TOPIC_OF, DeadLetterFilter(reason="SCHEMA_VIOLATION"))
    assert report.resolved == len(bugged)
    assert rows(database_url, "SELECT count(*) AS n FROM bo.dead_letters WHERE status = 'RESOLVED'")[0]["n"] == len(
        bugged)
    still_open = rows(database_url, "SELECT count(*) AS n FROM bo.dead_letters WHERE status = 'OPEN'")[0]["n"]
    assert still_open == genuine  # the genuinely invalid stay, with the reason the code gives today

    # The same log, projected from position 0 by the fixed code, in another database.
    with psycopg.connect(admin_database_url) as source, psycopg.connect(clean_copy) as target, \
            source.cursor().copy("COPY bo.event_log TO STDOUT (FORMAT binary)") as out, \
            target.cursor().copy("COPY bo.event_log FROM STDIN (FORMAT binary)") as into:
        for chunk in out:
            into.write(chunk)
    clean_url = app_role_url(clean_copy, role="bo_app_test")
    runner(clean_url).catch_up()
    assert contents(database_url) == contents(clean_url)
    assert rows(database_url, "SELECT version_missing_cnt FROM bo.ledger_entries WHERE tx_id = 'tx-fix-nv'") == [
        {"version_missing_cnt": 2}]
    open_letters = "SELECT projector, position, reason, detail FROM bo.dead_letters WHERE status = 'OPEN' ORDER BY 1, 2"
    assert rows(database_url, open_letters) == rows(clean_url, open_letters)


def test_replay_of_letters_that_still_fail_keeps_them_open_with_the_current_reason(database_url: str) -> None:
    report = replay_dead_letters(datastore_for(database_url), TOPIC_OF, DeadLetterFilter(projector="payment_orders"))
    assert report.replayed > 0 and report.resolved == 0
    assert rows(database_url, "SELECT DISTINCT status FROM bo.dead_letters WHERE projector = 'payment_orders'"
                              " AND resolved_at IS NULL") == [{"status": "OPEN"}]


def test_replaying_one_letter_resolves_the_other_letters_of_the_entity_it_re_projects(
        database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    twice = [ledger("two-1", 20, tx_id="tx-two", entry_type="DEBIT", currency="JPY", version=1),
             ledger("two-2", 21, tx_id="tx-two", entry_type="DEBIT", currency="JPY", version=2)]
    append_all(database_url, twice)
    with monkeypatch.context() as bug:
        bug.setattr(batch_module, "classify", rejects_jpy)
        runner(database_url, engine=PYTHON_ENGINE).catch_up()
    letters = rows(database_url, """
        SELECT d.id FROM bo.dead_letters d JOIN bo.event_log l USING (position)
         WHERE d.projector = 'ledger_entries' AND l.event_id IN ('two-1', 'two-2') AND d.status = 'OPEN'
         ORDER BY d.position""")
    assert len(letters) == 2
    report = replay_dead_letters(datastore_for(database_url), TOPIC_OF, DeadLetterFilter(), [letters[0]["id"]])
    assert (report.replayed, report.resolved) == (1, 2)
    assert rows(database_url, "SELECT version FROM bo.ledger_entries WHERE tx_id = 'tx-two'") == [{"version": 2}]
