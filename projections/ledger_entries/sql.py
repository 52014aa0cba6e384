"""Statements of the ledger_entries read model; `{table}` is the version's physical table."""

from __future__ import annotations

from collections.abc import Sequence

from psycopg import sql

from projections.keys import NEWER_THAN_STORED

# The columns of version 1; later versions add theirs (v2: amount_minor).
COLUMNS_V1 = (
    "tx_id", "wallet_id", "entry_type", "amount", "currency", "status", "status_group", "related_id",
    "related_type", "created_at", "updated_at", "version", "booked_at", "event_id", "ingested_at",
    "position", "version_missing_cnt", "projector_version",
)

# One row per tx_id; an incoming row replaces the stored one only when its ordering key
# is greater (SPEC 4.1), and the count of applied unversioned events accumulates.
UPSERT_LEDGER_ENTRY = sql.SQL("""
    INSERT INTO {table} AS t ({columns})
    VALUES ({values})
    ON CONFLICT (tx_id) DO UPDATE SET {assignments},
        version_missing_cnt = t.version_missing_cnt + EXCLUDED.version_missing_cnt
    WHERE {newer}
""")


def upsert_ledger_entry(table: sql.Identifier, columns: Sequence[str] = COLUMNS_V1) -> sql.Composed:
    replaced = [c for c in columns if c not in ("tx_id", "version_missing_cnt")]
    return UPSERT_LEDGER_ENTRY.format(
        table=table,
        columns=sql.SQL(", ").join(sql.Identifier(c) for c in columns),
        values=sql.SQL(", ").join(sql.Placeholder(c) for c in columns),
        assignments=sql.SQL(", ").join(
            sql.SQL("{c} = EXCLUDED.{c}").format(c=sql.Identifier(c)) for c in replaced),
        newer=NEWER_THAN_STORED,
    )
