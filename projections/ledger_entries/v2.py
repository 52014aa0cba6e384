"""Ledger entries, v2: v1 plus `amount_minor`, the amount in integer minor units (ISO 4217).

The worked example of a schema change: new tables (`bo.ledger_entries_v2`, made by
migration 0003), a fresh checkpoint, built by `bo rebuild ledger_entries --version 2`
while v1 serves, and switched to by `bo projections activate ledger_entries 2`.
"""

from __future__ import annotations

from typing import Any

from psycopg import sql

from projections.contract_sql import amount_minor_sql
from projections.currencies import amount_minor
from projections.ledger_entries.sql import COLUMNS_V1, upsert_ledger_entry
from projections.ledger_entries.v1 import LedgerEntriesV1, ledger_payload
from projections.projector import LoggedEvent

COLUMNS_V2 = (*COLUMNS_V1, "amount_minor")


class LedgerEntriesV2(LedgerEntriesV1):
    """Ledger entries, v2: adds amount_minor."""

    name = "ledger_entries"
    version = 2
    handles = frozenset({"LedgerEntryUpserted"})

    def upsert(self) -> sql.Composed:
        return upsert_ledger_entry(self.table(), COLUMNS_V2)

    def row_sql(self) -> dict[str, sql.Composable]:
        return {**super().row_sql(), "amount_minor": amount_minor_sql(sql.SQL("b.amount"), sql.SQL("b.currency"))}

    def row(self, event: LoggedEvent, unversioned_applied: int) -> dict[str, Any]:
        p = ledger_payload(event)
        return {**super().row(event, unversioned_applied), "amount_minor": amount_minor(p.amount, p.currency)}
