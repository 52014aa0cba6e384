"""Ledger entries, v1: one row per tx_id with its status group and resolved related_type."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from projections.contract import LedgerEntryPayload
from projections.keys import stored_keys
from projections.ledger_entries.sql import upsert_ledger_entry
from projections.newest_wins import Candidate, decide
from projections.projector import DictCursor, LoggedEvent, Projector
from projections.rules import OrderingKey, resolved_related_type, status_group


class LedgerEntriesV1(Projector):
    """Ledger entries, v1."""

    name = "ledger_entries"
    version = 1
    handles = frozenset({"LedgerEntryUpserted"})

    def apply(self, cur: DictCursor, events: Sequence[LoggedEvent]) -> Mapping[int, str]:
        if not events:
            return {}
        candidates = [
            Candidate(_payload(e).tx_id, OrderingKey.of(
                _payload(e).version, _payload(e).updated_at, e.ingested_at, e.position), e)
            for e in events
        ]
        stored = stored_keys(cur, self.table(), "tx_id", [c.entity_id for c in candidates])
        decision = decide(stored, candidates)
        cur.executemany(upsert_ledger_entry(self.table()), [
            self.row(c.state, decision.unversioned_applied.get(c.entity_id, 0))
            for c in decision.winners.values()
        ])
        return decision.fates

    def row(self, event: LoggedEvent, unversioned_applied: int) -> dict[str, Any]:
        p = _payload(event)
        return {
            "tx_id": p.tx_id, "wallet_id": p.wallet_id, "entry_type": p.entry_type,
            "amount": p.amount, "currency": p.currency, "status": p.status,
            "status_group": status_group(p.status), "related_id": p.related_id,
            "related_type": resolved_related_type(p.related_id, p.related_type),
            "created_at": p.created_at, "updated_at": p.updated_at, "version": p.version,
            "booked_at": p.created_at or p.updated_at or event.ingested_at,
            "event_id": event.event.envelope.event_id, "ingested_at": event.ingested_at,
            "position": event.position, "version_missing_cnt": unversioned_applied,
            "projector_version": self.version,
        }


def _payload(event: LoggedEvent) -> LedgerEntryPayload:
    payload = event.event.payload
    assert isinstance(payload, LedgerEntryPayload)
    return payload
