"""Statements the projector runner owns: reading the log after a checkpoint, dead letters."""

from __future__ import annotations

from psycopg import sql

# One runner per projector version at a time: a second one waits here.
LOCK_PROJECTOR = "SELECT pg_advisory_xact_lock(hashtext(%(name)s))"

SELECT_LOG_AFTER = """
    SELECT position, ingested_at, source, topic, event_type, raw_value, oversized, value_size
      FROM bo.event_log
     WHERE position > %(after)s
     ORDER BY position
     LIMIT %(limit)s
"""

SELECT_LOG_AT = """
    SELECT position, ingested_at, source, topic, event_type, raw_value, oversized, value_size
      FROM bo.event_log
     WHERE position = ANY(%(positions)s)
     ORDER BY position
"""

# Other log rows carrying the same event ids, up to the end of the batch, whatever
# their topic or type: event ids are unique across all topics (SPEC 2).
SELECT_OTHER_OCCURRENCES = """
    SELECT position, event_id, raw_value, oversized, value_size
      FROM bo.event_log
     WHERE event_id = ANY(%(event_ids)s)
       AND position <= %(up_to)s
       AND NOT (position = ANY(%(taken)s))
"""

INSERT_DEAD_LETTER = """
    INSERT INTO bo.dead_letters (projector, projector_version, position, event_id, reason, detail)
    VALUES (%(projector)s, %(version)s, %(position)s, %(event_id)s, %(reason)s, %(detail)s)
    ON CONFLICT (projector, projector_version, position) DO UPDATE
       SET reason = EXCLUDED.reason, detail = EXCLUDED.detail, status = 'OPEN', resolved_at = NULL
"""

SELECT_HEAD = "SELECT coalesce(max(position), 0) AS head FROM bo.event_log"

# The W3C trace contexts the batch's messages carried: links of its span (read only while tracing).
SELECT_TRACEPARENTS = """
    SELECT traceparent FROM bo.event_log
     WHERE position > %(after)s AND position <= %(up_to)s AND traceparent IS NOT NULL
"""

# Rows of a replay's batch that the version now takes in (applied, superseded or a duplicate):
# valid, and not a DUPLICATE_EVENT_ID_CONFLICT.
SELECT_BATCH_TAKEN = """
    SELECT position FROM bo_batch
     WHERE position = ANY(%(positions)s) AND verdict = 'VALID' AND occurrence IN ('FIRST', 'DUPLICATE')
"""

# Open dead letters of the version whose rows a replay has now taken in.
RESOLVE_TAKEN_DEAD_LETTERS = """
    UPDATE bo.dead_letters SET status = 'RESOLVED', resolved_at = now()
     WHERE projector = %(projector)s AND projector_version = %(version)s AND status = 'OPEN'
       AND position = ANY(%(positions)s)
"""

# What a version takes from the batch: the event types it handles, and rows of no known
# type (not JSON, unknown event_type) from its topics or from backfill (no topic).
TAKES = sql.SQL("""
    (b.event_type = ANY({handles})
     OR ((b.event_type IS NULL OR NOT (b.event_type = ANY({known}))) AND (b.topic IS NULL OR b.topic = ANY({topics}))))
""")

INSERT_BATCH_DEAD_LETTERS = sql.SQL("""
    INSERT INTO bo.dead_letters (projector, projector_version, position, event_id, reason, detail)
    SELECT %(projector)s, %(version)s, b.position, b.event_id,
           CASE WHEN b.verdict = 'REJECTED' THEN b.reason ELSE 'DUPLICATE_EVENT_ID_CONFLICT' END, b.detail
      FROM bo_batch b
     WHERE {takes} AND (b.verdict = 'REJECTED' OR b.occurrence = 'CONFLICT')
     ORDER BY b.position
    ON CONFLICT (projector, projector_version, position) DO UPDATE
       SET reason = EXCLUDED.reason, detail = EXCLUDED.detail, status = 'OPEN', resolved_at = NULL
    RETURNING reason
""")
