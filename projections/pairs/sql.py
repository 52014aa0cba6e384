"""Statements of the payment_ledger_pairs read model; `{members}`/`{pairs}` are the version's tables."""

from __future__ import annotations

from psycopg import sql

SELECT_MEMBERS_BY_KEY = sql.SQL("""
    SELECT m.* FROM {members} m
      JOIN unnest(%(kinds)s::text[], %(ids)s::text[]) AS k(kind, entity_id)
        ON m.kind = k.kind AND m.entity_id = k.entity_id
""")

SELECT_MEMBERS_BY_ORDER = sql.SQL("""
    SELECT * FROM {members} WHERE order_ref = ANY(%(order_ids)s)
""")

SELECT_PAIRS = sql.SQL("""
    SELECT * FROM {pairs} WHERE order_id = ANY(%(order_ids)s)
""")

UPSERT_MEMBER = sql.SQL("""
    INSERT INTO {members} (kind, entity_id, order_ref, entry_type, amount, currency, version,
                           updated_at, ingested_at, position, first_seen_at)
    VALUES (%(kind)s, %(entity_id)s, %(order_ref)s, %(entry_type)s, %(amount)s, %(currency)s,
            %(version)s, %(updated_at)s, %(ingested_at)s, %(position)s, %(first_seen_at)s)
    ON CONFLICT (kind, entity_id) DO UPDATE SET
        order_ref = EXCLUDED.order_ref, entry_type = EXCLUDED.entry_type,
        amount = EXCLUDED.amount, currency = EXCLUDED.currency, version = EXCLUDED.version,
        updated_at = EXCLUDED.updated_at, ingested_at = EXCLUDED.ingested_at,
        position = EXCLUDED.position, first_seen_at = EXCLUDED.first_seen_at
""")

UPSERT_PAIR = sql.SQL("""
    INSERT INTO {pairs} (order_id, order_present, debit_tx_id, credit_tx_id, pairing_status,
                         missing, first_seen_at, completed_at, position, projector_version)
    VALUES (%(order_id)s, %(order_present)s, %(debit_tx_id)s, %(credit_tx_id)s,
            %(pairing_status)s, %(missing)s, %(first_seen_at)s, %(completed_at)s,
            %(position)s, %(projector_version)s)
    ON CONFLICT (order_id) DO UPDATE SET
        order_present = EXCLUDED.order_present, debit_tx_id = EXCLUDED.debit_tx_id,
        credit_tx_id = EXCLUDED.credit_tx_id, pairing_status = EXCLUDED.pairing_status,
        missing = EXCLUDED.missing, first_seen_at = EXCLUDED.first_seen_at,
        completed_at = EXCLUDED.completed_at, position = EXCLUDED.position,
        projector_version = EXCLUDED.projector_version
""")

DELETE_PAIRS = sql.SQL("DELETE FROM {pairs} WHERE order_id = ANY(%(order_ids)s)")

DELETE_MEMBERS = sql.SQL("""
    DELETE FROM {members} m
     USING unnest(%(kinds)s::text[], %(ids)s::text[]) AS k(kind, entity_id)
     WHERE m.kind = k.kind AND m.entity_id = k.entity_id
    RETURNING m.order_ref
""")

# Every log row of the given members (by the id the log recorded at ingest).
SELECT_MEMBER_HISTORY = """
    SELECT position, ingested_at, raw_value, oversized FROM bo.event_log
     WHERE position <= %(up_to)s
       AND ((event_type = 'PaymentOrderUpserted' AND entity_id = ANY(%(order_ids)s))
         OR (event_type = 'LedgerEntryUpserted' AND entity_id = ANY(%(tx_ids)s)))
     ORDER BY position
"""

# Orders and ledger entries that ever named one of these orders. The ledger side reads the
# parsed documents (no index on related_id): a replay is a rare operator action.
SELECT_CLAIMANTS = """
    SELECT DISTINCT CASE event_type WHEN 'PaymentOrderUpserted' THEN 'ORDER' ELSE 'LEDGER' END AS kind,
           entity_id
      FROM bo.event_log
     WHERE position <= %(up_to)s AND entity_id IS NOT NULL
       AND ((event_type = 'PaymentOrderUpserted' AND entity_id = ANY(%(order_ids)s))
         OR (event_type = 'LedgerEntryUpserted' AND document -> 'payload' ->> 'related_id' = ANY(%(order_ids)s)))
"""
