"""Event ids are unique across all topics: a reuse by another event type is a conflict for every projector."""

from __future__ import annotations

import json

from eventstore.ingest.decode import decode
from eventstore.records import KafkaCoordinates
from tests.fates import fates_by_event_id
from tests.integration.helpers import append_all, rows, runner


def test_an_order_reusing_a_ledger_event_id_is_dead_lettered_by_every_projector(database_url: str) -> None:
    ledger = {"event_id": "shared-1", "event_type": "LedgerEntryUpserted", "payload": {
        "tx_id": "tx-s", "wallet_id": "w", "entry_type": "DEBIT", "amount": "5", "currency": "KRW",
        "status": "POSTED", "related_id": "ord-s"}}
    order = {"event_id": "shared-1", "event_type": "PaymentOrderUpserted", "payload": {
        "order_id": "ord-s", "wallet_id": "w", "amount": "5", "currency": "KRW", "status": "PAID"}}
    append_all(database_url, [
        decode(KafkaCoordinates("bo.ledger-entries.v1", 0, 0, None), b"tx-s", json.dumps(ledger).encode(), None),
        decode(KafkaCoordinates("bo.payment-orders.v1", 0, 0, None), b"ord-s", json.dumps(order).encode(), None),
    ])
    runner(database_url).catch_up()
    letters = rows(database_url, "SELECT projector, reason FROM bo.dead_letters ORDER BY projector")
    assert [(r["projector"], r["reason"]) for r in letters] == [
        ("payment_ledger_pairs", "DUPLICATE_EVENT_ID_CONFLICT"),
        ("payment_orders", "DUPLICATE_EVENT_ID_CONFLICT"),
    ]
    assert rows(database_url, "SELECT * FROM bo.payment_orders") == []
    assert [r["tx_id"] for r in rows(database_url, "SELECT tx_id FROM bo.ledger_entries")] == ["tx-s"]


def test_the_same_payload_as_a_number_or_as_a_string_is_a_conflict_not_a_duplicate(database_url: str) -> None:
    def message(offset: int, amount: object) -> bytes:
        return json.dumps({"event_id": "amt-1", "event_type": "LedgerEntryUpserted", "payload": {
            "tx_id": "tx-amt", "wallet_id": "w", "entry_type": "DEBIT", "amount": amount,
            "currency": "KRW", "status": "POSTED"}}).encode()

    append_all(database_url, [
        decode(KafkaCoordinates("bo.ledger-entries.v1", 1, 0, None), b"tx-amt", message(0, "1.5"), None),
        decode(KafkaCoordinates("bo.ledger-entries.v1", 1, 1, None), b"tx-amt", message(1, "1.5"), None),
        decode(KafkaCoordinates("bo.ledger-entries.v1", 1, 2, None), b"tx-amt",
               message(2, "X").replace(b'"X"', b"1.5"), None),
    ])
    runner(database_url).catch_up()
    fates = fates_by_event_id(database_url, "ledger_entries", "amt-1")
    assert fates == ["APPLIED", "DUPLICATE", "DEAD_LETTERED"]
