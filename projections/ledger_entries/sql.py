"""Statements of the ledger_entries read model; `{table}` is the version's physical table."""

from __future__ import annotations

from psycopg import sql

from projections.keys import NEWER_THAN_STORED

UPSERT_LEDGER_ENTRY = sql.SQL("""
    INSERT INTO {table} AS t (
        tx_id, wallet_id, entry_type, amount, currency, status, status_group, related_id,
        related_type, created_at, updated_at, version, booked_at, event_id, ingested_at,
        position, version_missing_cnt, projector_version)
    VALUES (
        %(tx_id)s, %(wallet_id)s, %(entry_type)s, %(amount)s, %(currency)s, %(status)s,
        %(status_group)s, %(related_id)s, %(related_type)s, %(created_at)s, %(updated_at)s,
        %(version)s, %(booked_at)s, %(event_id)s, %(ingested_at)s, %(position)s,
        %(version_missing_cnt)s, %(projector_version)s)
    ON CONFLICT (tx_id) DO UPDATE SET
        wallet_id = EXCLUDED.wallet_id, entry_type = EXCLUDED.entry_type,
        amount = EXCLUDED.amount, currency = EXCLUDED.currency, status = EXCLUDED.status,
        status_group = EXCLUDED.status_group, related_id = EXCLUDED.related_id,
        related_type = EXCLUDED.related_type, created_at = EXCLUDED.created_at,
        updated_at = EXCLUDED.updated_at, version = EXCLUDED.version,
        booked_at = EXCLUDED.booked_at, event_id = EXCLUDED.event_id,
        ingested_at = EXCLUDED.ingested_at, position = EXCLUDED.position,
        version_missing_cnt = t.version_missing_cnt + EXCLUDED.version_missing_cnt,
        projector_version = EXCLUDED.projector_version
    WHERE {newer}
""")


def upsert_ledger_entry(table: sql.Identifier) -> sql.Composed:
    return UPSERT_LEDGER_ENTRY.format(table=table, newer=NEWER_THAN_STORED)
