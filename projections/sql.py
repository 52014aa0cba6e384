"""Statements the projector runner owns: reading the log after a checkpoint, fates, dead letters."""

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

DELETE_FATES = sql.SQL("DELETE FROM {fates} WHERE position = ANY(%(positions)s)")

# Other log rows carrying the same event ids, up to the end of the batch, whatever
# their topic or type: event ids are unique across all topics (SPEC 2).
SELECT_OTHER_OCCURRENCES = """
    SELECT position, event_id, raw_value
      FROM bo.event_log
     WHERE event_id = ANY(%(event_ids)s)
       AND position <= %(up_to)s
       AND NOT (position = ANY(%(taken)s))
"""

INSERT_FATE = sql.SQL("""
    INSERT INTO {fates} (position, event_id, payload_sha256, fate)
    VALUES (%(position)s, %(event_id)s, %(payload_sha256)s, %(fate)s)
""")

INSERT_DEAD_LETTER = """
    INSERT INTO bo.dead_letters (projector, projector_version, position, event_id, reason, detail)
    VALUES (%(projector)s, %(version)s, %(position)s, %(event_id)s, %(reason)s, %(detail)s)
    ON CONFLICT (projector, projector_version, position) DO UPDATE
       SET reason = EXCLUDED.reason, detail = EXCLUDED.detail, status = 'OPEN', resolved_at = NULL
"""
