"""Messages PostgreSQL could not store in a read table are dead-lettered; the projector goes on."""

from __future__ import annotations

import json

from eventstore.ingest.decode import decode
from eventstore.records import KafkaCoordinates, LogRecord
from tests.integration.helpers import append_all, rows, runner

TOPIC = "bo.ledger-entries.v1"


def ledger(offset: int, tx_id: str, **changes: object) -> LogRecord:
    payload = {"tx_id": tx_id, "wallet_id": "w", "entry_type": "DEBIT", "amount": "1",
               "currency": "KRW", "status": "POSTED", **changes}
    value = json.dumps({"event_id": f"p-{offset}", "event_type": "LedgerEntryUpserted", "payload": payload})
    return decode(KafkaCoordinates(TOPIC, 0, offset, None), tx_id.encode(), value.encode(), None)


def test_nul_characters_and_out_of_range_versions_are_dead_lettered(database_url: str) -> None:
    append_all(database_url, [
        ledger(0, "tx-nul", status="POS\u0000TED"),
        ledger(1, "tx-huge", version=2**64),
        ledger(2, "tx-fine"),
        decode(KafkaCoordinates(TOPIC, 0, 3, None), None, b"\xff\xfe not utf-8", None),
        decode(KafkaCoordinates(TOPIC, 0, 4, None), None, b"[" * 100_000, None),
    ])
    runner(database_url).catch_up()
    letters = {r["position"]: (r["reason"], r["detail"].split(":")[0]) for r in rows(
        database_url, "SELECT position, reason, detail FROM bo.dead_letters WHERE projector = 'ledger_entries'")}
    assert sorted(letters.values()) == sorted([
        ("SCHEMA_VIOLATION", "payload.status"),
        ("SCHEMA_VIOLATION", "payload.version"),
        ("INVALID_JSON", "(root)"),
        ("INVALID_JSON", "(root)"),
    ])
    assert [r["tx_id"] for r in rows(database_url, "SELECT tx_id FROM bo.ledger_entries")] == ["tx-fine"]


def raw(offset: int, text: str) -> LogRecord:
    return decode(KafkaCoordinates(TOPIC, 1, offset, None), b"k", text.encode(), None)


def test_values_postgresql_would_refuse_are_logged_raw_and_never_stop_ingest_or_projection(
    database_url: str,
) -> None:
    event = '{"event_id": "q-%d", "event_type": "LedgerEntryUpserted", "payload": %s}'
    payload = '{"tx_id": "tx-q%d", "wallet_id": "w", "entry_type": "DEBIT", "amount": "1", "currency": "KRW", "status": "POSTED"%s}'
    values = [
        event % (0, payload % (0, ', "x": NaN')),                       # not JSON
        event % (1, payload % (1, ', "note": "\\ud800"')),            # lone surrogate: not JSON
        event % (2, payload % (2, ', "extra": 1e1000000')),             # valid, beyond numeric
        event % (3, payload % (3, ', "updated_at": "9999-12-31T23:59:59-01:00"')),  # year 10000 UTC
        event % (4, payload % (4, ', "note": "a\\u0000b"')),          # valid, NUL in an extra field
    ]
    append_all(database_url, [raw(i, v) for i, v in enumerate(values)])
    logged = rows(database_url, "SELECT raw_value, document IS NULL AS no_document FROM bo.event_log"
                                " WHERE \"partition\" = 1 ORDER BY \"offset\"")
    assert [bytes(r["raw_value"]).decode() for r in logged] == values
    assert [r["no_document"] for r in logged] == [True, True, True, False, True]

    runner(database_url).catch_up()
    letters = [(r["offset"], r["reason"]) for r in rows(database_url, """
        SELECT l."offset", d.reason FROM bo.dead_letters d JOIN bo.event_log l USING (position)
         WHERE d.projector = 'ledger_entries' AND l."partition" = 1 ORDER BY 1""")]
    assert letters == [(0, "INVALID_JSON"), (1, "INVALID_JSON"), (3, "SCHEMA_VIOLATION")]
    applied = {r["tx_id"] for r in rows(database_url, "SELECT tx_id FROM bo.ledger_entries WHERE tx_id LIKE 'tx-q%'")}
    assert applied == {"tx-q2", "tx-q4"}


def test_a_document_postgresql_refuses_is_dropped_and_the_batch_still_appended(database_url: str) -> None:

    fine = raw(100, '{"event_id": "ok-1"}')
    forced = raw(101, '{"a": 0e-20000}')._replace(document='{"a": 0e-20000}')  # past decode's checks
    append_all(database_url, [fine, forced])
    got = rows(database_url, """SELECT "offset", document IS NULL AS no_document, raw_value FROM bo.event_log
                                WHERE "partition" = 1 AND "offset" >= 100 ORDER BY "offset" """)
    assert [(r["offset"], r["no_document"]) for r in got] == [(100, True), (101, True)]
    assert bytes(got[1]["raw_value"]) == b'{"a": 0e-20000}'


def test_a_rejected_message_whose_event_id_holds_a_nul_is_dead_lettered_without_its_id(database_url: str) -> None:
    bad = [
        json.dumps({"event_id": "a\u0000b", "event_type": "LedgerEntryVoided", "payload": {}}),
        json.dumps({"event_id": "c\u0000d", "event_type": "LedgerEntryUpserted", "payload": {"tx_id": "x"}}),
        json.dumps({"event_id": "e\u0000f", "event_type": "LedgerEntryUpserted", "schema_version": 9, "payload": {}}),
    ]
    append_all(database_url, [decode(KafkaCoordinates(TOPIC, 7, n, None), None, value.encode(), None)
                              for n, value in enumerate(bad)] + [ledger(10, "tx-after-nul-ids")])
    runner(database_url).catch_up()
    letters = rows(database_url, """
        SELECT d.reason, d.event_id FROM bo.dead_letters d JOIN bo.event_log l USING (position)
         WHERE l."partition" = 7 AND d.projector = 'ledger_entries' ORDER BY l."offset" """)
    assert [(r["reason"], r["event_id"]) for r in letters] == [
        ("UNKNOWN_EVENT_TYPE", None), ("SCHEMA_VIOLATION", None), ("UNSUPPORTED_SCHEMA_VERSION", None)]
    assert rows(database_url, "SELECT tx_id FROM bo.ledger_entries WHERE tx_id = 'tx-after-nul-ids'") == [
        {"tx_id": "tx-after-nul-ids"}]
