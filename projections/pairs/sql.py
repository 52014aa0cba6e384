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

# A member's newest state replaces the stored one (the caller decided it is newer); the
# `{replace_member}` of both engines' member upserts.
REPLACE_MEMBER = sql.SQL("""ON CONFLICT (kind, entity_id) DO UPDATE SET
        order_ref = EXCLUDED.order_ref, entry_type = EXCLUDED.entry_type,
        amount = EXCLUDED.amount, currency = EXCLUDED.currency, version = EXCLUDED.version,
        updated_at = EXCLUDED.updated_at, ingested_at = EXCLUDED.ingested_at,
        position = EXCLUDED.position, first_seen_at = EXCLUDED.first_seen_at""")

UPSERT_MEMBER = sql.SQL("""
    INSERT INTO {members} (kind, entity_id, order_ref, entry_type, amount, currency, version,
                           updated_at, ingested_at, position, first_seen_at)
    VALUES (%(kind)s, %(entity_id)s, %(order_ref)s, %(entry_type)s, %(amount)s, %(currency)s,
            %(version)s, %(updated_at)s, %(ingested_at)s, %(position)s, %(first_seen_at)s)
    {replace_member}
""")

# A pair row recomputed from its members replaces the stored one; both engines' pair upserts.
REPLACE_PAIR = sql.SQL("""ON CONFLICT (order_id) DO UPDATE SET
        order_present = EXCLUDED.order_present, debit_tx_id = EXCLUDED.debit_tx_id,
        credit_tx_id = EXCLUDED.credit_tx_id, pairing_status = EXCLUDED.pairing_status,
        missing = EXCLUDED.missing, first_seen_at = EXCLUDED.first_seen_at,
        completed_at = EXCLUDED.completed_at, position = EXCLUDED.position,
        projector_version = EXCLUDED.projector_version""")

UPSERT_PAIR = sql.SQL("""
    INSERT INTO {pairs} (order_id, order_present, debit_tx_id, credit_tx_id, pairing_status,
                         missing, first_seen_at, completed_at, position, projector_version)
    VALUES (%(order_id)s, %(order_present)s, %(debit_tx_id)s, %(credit_tx_id)s,
            %(pairing_status)s, %(missing)s, %(first_seen_at)s, %(completed_at)s,
            %(position)s, %(projector_version)s)
    {replace_pair}
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


# --- The set-based path (apply_batch): the same decisions as PairBook, event by event. ---------
# {key} is the ordering key of SPEC 4.1 (projections/keys.py); temporary tables live until commit.
# Steps are materialised in temporary tables rather than chained as CTEs: the planner sizes a
# temporary table from its pages, but guesses a CTE's rows, and chose quadratic nested loops
# over the change points (62 s instead of 0.3 s for a batch of 20,000; measured).

DROP_STEPS = """
    DROP TABLE IF EXISTS bo_pair_judged, bo_pair_states, bo_pair_changes, bo_pair_intervals, bo_pair_status,
                         bo_pair_final
"""

# Every first-seen valid event of the batch as a member change, with newest-wins judged per
# member against its earlier keys (the stored member's included).
JUDGE_MEMBER_EVENTS = sql.SQL("""
    CREATE TEMPORARY TABLE bo_pair_judged ON COMMIT DROP AS
    WITH incoming AS (
        SELECT b.position, b.ingested_at,
               CASE b.event_type WHEN 'PaymentOrderUpserted' THEN 'ORDER' ELSE 'LEDGER' END AS kind,
               b.entity_id,
               CASE WHEN b.event_type = 'PaymentOrderUpserted' THEN b.entity_id
                    WHEN b.related_id IS NOT NULL AND coalesce(b.related_type, 'PAYMENT_ORDER') = 'PAYMENT_ORDER'
                    THEN b.related_id END AS order_ref,
               CASE WHEN b.event_type = 'LedgerEntryUpserted' THEN b.entry_type END AS entry_type,
               b.amount, b.currency, b.version, b.updated_at, {key_b} AS key
          FROM bo_batch b
         WHERE b.verdict = 'VALID' AND b.occurrence = 'FIRST' AND b.event_type = ANY({handles}::text[])
    ), timeline AS (
        SELECT i.*, true AS incoming, NULL::timestamptz AS stored_first_seen FROM incoming i
        UNION ALL
        SELECT m.position, m.ingested_at, m.kind, m.entity_id, m.order_ref, m.entry_type, m.amount, m.currency,
               m.version, m.updated_at, {key_m}, false, m.first_seen_at
          FROM {members} m
         WHERE (m.kind, m.entity_id) IN (SELECT kind, entity_id FROM incoming)
    )
    SELECT t.*,
           key > coalesce(max(key) OVER (PARTITION BY kind, entity_id ORDER BY position
                                         ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING),
                          '{{-1}}'::bigint[]) AS applied
      FROM timeline t
""")

# Each member's successive states (its stored state, then each applied event), with the
# order it belonged to before, and its first_seen_at (its first applied event's ingested_at).
MEMBER_STATES = sql.SQL("""
    CREATE TEMPORARY TABLE bo_pair_states ON COMMIT DROP AS
    SELECT kind, entity_id, position AS valid_from,
           coalesce(lead(position) OVER w, 9223372036854775807) AS valid_to,
           lag(order_ref) OVER w AS prev_ref,
           order_ref, entry_type, amount, currency, version, updated_at, ingested_at, incoming,
           first_value(coalesce(stored_first_seen, ingested_at)) OVER w AS first_seen_at
      FROM bo_pair_judged
     WHERE applied
    WINDOW w AS (PARTITION BY kind, entity_id ORDER BY position)
""")

# A pair is recomputed at every applied event of a member that joins or leaves it.
CHANGE_POINTS = sql.SQL("""
    CREATE TEMPORARY TABLE bo_pair_changes ON COMMIT DROP AS
    SELECT order_ref AS order_id, valid_from AS position, ingested_at AS at
      FROM bo_pair_states WHERE incoming AND order_ref IS NOT NULL
    UNION
    SELECT prev_ref, valid_from, ingested_at
      FROM bo_pair_states WHERE incoming AND prev_ref IS NOT NULL
""")

# Which member belonged to which pair from which position to which: the batch's members'
# states, and the stored members of the pairs concerned that the batch did not touch.
MEMBER_INTERVALS = sql.SQL("""
    CREATE TEMPORARY TABLE bo_pair_intervals ON COMMIT DROP AS
    SELECT kind, entity_id, order_ref, entry_type, amount, currency, first_seen_at, valid_from, valid_to
      FROM bo_pair_states
     WHERE order_ref IN (SELECT order_id FROM bo_pair_changes)
    UNION ALL
    SELECT m.kind, m.entity_id, m.order_ref, m.entry_type, m.amount, m.currency, m.first_seen_at, m.position,
           9223372036854775807
      FROM {members} m
     WHERE m.order_ref IN (SELECT order_id FROM bo_pair_changes)
       AND NOT EXISTS (SELECT 1 FROM bo_pair_judged j WHERE j.kind = m.kind AND j.entity_id = m.entity_id)
""")

# SPEC 4.3 at each change point: the members present then decide the status (rules.pair_status).
# Ledger ids are ordered by code point (COLLATE "C") as Python sorts them.
PAIR_STATUS_AT_CHANGES = sql.SQL("""
    CREATE TEMPORARY TABLE bo_pair_status ON COMMIT DROP AS
    WITH present AS (
        SELECT c.order_id, c.position, c.at,
               count(i.kind) AS members,
               coalesce(bool_or(i.kind = 'ORDER'), false) AS order_present,
               count(*) FILTER (WHERE i.kind = 'LEDGER' AND i.entry_type = 'DEBIT') AS debits,
               count(*) FILTER (WHERE i.kind = 'LEDGER' AND i.entry_type = 'CREDIT') AS credits,
               min(i.entity_id COLLATE "C") FILTER (WHERE i.kind = 'LEDGER' AND i.entry_type = 'DEBIT') AS debit_tx_id,
               min(i.entity_id COLLATE "C") FILTER (WHERE i.kind = 'LEDGER' AND i.entry_type = 'CREDIT')
                   AS credit_tx_id,
               count(DISTINCT i.amount) AS amounts, count(DISTINCT i.currency) AS currencies,
               min(i.first_seen_at) AS first_seen_at
          FROM bo_pair_changes c
          LEFT JOIN bo_pair_intervals i
                 ON i.order_ref = c.order_id AND i.valid_from <= c.position AND c.position < i.valid_to
         GROUP BY c.order_id, c.position, c.at
    )
    SELECT p.*,
           CASE WHEN debits > 1 OR credits > 1 THEN 'MISMATCH'
                WHEN NOT order_present OR debits = 0 OR credits = 0 THEN 'PARTIAL'
                WHEN amounts = 1 AND currencies = 1 THEN 'COMPLETE'
                ELSE 'MISMATCH' END AS pairing_status,
           array_remove(ARRAY[CASE WHEN NOT order_present THEN 'PAYMENT_ORDER' END,
                              CASE WHEN debits = 0 THEN 'DEBIT' END,
                              CASE WHEN credits = 0 THEN 'CREDIT' END], NULL) AS missing
      FROM present p
""")

# Each pair's row after the batch: its state at its last change point, and completed_at:
# the ingested_at of the first change point that made it COMPLETE, since it last had no
# member (a pair without members is deleted and starts afresh), else the stored one.
SELECT_FINAL_PAIRS = sql.SQL("""
    CREATE TEMPORARY TABLE bo_pair_final ON COMMIT DROP AS
    WITH per_order AS (
        SELECT order_id,
               max(position) AS last_position,
               max(position) FILTER (WHERE members = 0) AS last_empty
          FROM bo_pair_status GROUP BY order_id
    ), completed AS (
        SELECT o.order_id,
               (array_agg(s.at ORDER BY s.position) FILTER (
                    WHERE s.pairing_status = 'COMPLETE' AND (o.last_empty IS NULL OR s.position > o.last_empty)))[1]
                   AS first_complete_at
          FROM per_order o JOIN bo_pair_status s USING (order_id)
         GROUP BY o.order_id
    )
    SELECT s.order_id, s.members, s.order_present, s.debit_tx_id, s.credit_tx_id, s.pairing_status, s.missing,
           s.first_seen_at, s.position,
           CASE WHEN o.last_empty IS NULL THEN coalesce(stored.completed_at, c.first_complete_at)
                ELSE c.first_complete_at END AS completed_at
      FROM per_order o
      JOIN bo_pair_status s ON s.order_id = o.order_id AND s.position = o.last_position
      JOIN completed c ON c.order_id = o.order_id
      LEFT JOIN {pairs} stored ON stored.order_id = o.order_id
""")

UPSERT_FINAL_PAIRS = sql.SQL("""
    INSERT INTO {pairs} (order_id, order_present, debit_tx_id, credit_tx_id, pairing_status, missing,
                         first_seen_at, completed_at, position, projector_version)
    SELECT order_id, order_present, debit_tx_id, credit_tx_id, pairing_status, missing, first_seen_at,
           completed_at, position, {version}
      FROM bo_pair_final WHERE members > 0
    {replace_pair}
""")

DELETE_EMPTY_PAIRS = sql.SQL("""
    DELETE FROM {pairs} WHERE order_id IN (SELECT order_id FROM bo_pair_final WHERE members = 0)
""")

# Each member's newest state after the batch.
UPSERT_FINAL_MEMBERS = sql.SQL("""
    INSERT INTO {members} (kind, entity_id, order_ref, entry_type, amount, currency, version, updated_at,
                           ingested_at, position, first_seen_at)
    SELECT DISTINCT ON (kind, entity_id) kind, entity_id, order_ref, entry_type, amount, currency, version,
           updated_at, ingested_at, valid_from, first_seen_at
      FROM bo_pair_states WHERE incoming
     ORDER BY kind, entity_id, valid_from DESC
    {replace_member}
""")
