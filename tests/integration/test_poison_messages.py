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
