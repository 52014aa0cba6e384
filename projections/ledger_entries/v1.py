"""Ledger entries, v1: one row per tx_id with its status group and resolved related_type."""

from __future__ import annotations

from typing import Any

from psycopg import sql

from projections.contract import LedgerEntryPayload
from projections.contract_sql import booked_at_sql, resolved_related_type_sql, status_group_sql
from projections.ledger_entries.sql import upsert_ledger_entry
from projections.newest_wins_projector import NewestWinsProjector
from projections.projector import LoggedEvent
from projections.rules import resolved_related_type, status_group


class LedgerEntriesV1(NewestWinsProjector):
    """Ledger entries, v1."""

    name = "ledger_entries"
    version = 1
    handles = frozenset({"LedgerEntryUpserted"})
    id_column = "tx_id"

    def entity_id(self, event: LoggedEvent) -> str:
        return ledger_payload(event).tx_id

    def upsert(self) -> sql.Composed:
        return upsert_ledger_entry(self.table())

    def row_sql(self) -> dict[str, sql.Composable]:
        b = _b
        return {
            "tx_id": b("entity_id"), "wallet_id": b("wallet_id"), "entry_type": b("entry_type"),
            "amount": b("amount"), "currency": b("currency"), "status": b("status"),
            "status_group": status_group_sql(b("status")), "related_id": b("related_id"),
            "related_type": resolved_related_type_sql(b("related_id"), b("related_type")),
            "created_at": b("created_at"), "updated_at": b("updated_at"), "version": b("version"),
            "booked_at": booked_at_sql(b("created_at"), b("updated_at"), b("ingested_at")),
            "event_id": b("event_id"), "ingested_at": b("ingested_at"), "position": b("position"),
            "version_missing_cnt": sql.SQL("j.unversioned::integer"),
            "projector_version": sql.Literal(self.version),
        }

    def row(self, event: LoggedEvent, unversioned_applied: int) -> dict[str, Any]:
        p = ledger_payload(event)
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


def _b(column: str) -> sql.Composed:
    return sql.SQL("b.{c}").format(c=sql.Identifier(column))


def ledger_payload(event: LoggedEvent) -> LedgerEntryPayload:
    payload = event.event.payload
    assert isinstance(payload, LedgerEntryPayload)
    return payload
