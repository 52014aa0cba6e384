"""Named SQL statements for the event log and the consumer offsets. Values are always parameters."""

from __future__ import annotations

# Serialise appenders so that positions are issued in commit order: see eventstore/log.py.
LOCK_LOG = "LOCK TABLE bo.event_log IN EXCLUSIVE MODE"

# Taken after the lock, so that ingested_at never decreases as position increases.
APPEND_CLOCK = "SELECT clock_timestamp()"

SELECT_NEXT_OFFSETS = """
    SELECT topic, "partition", next_offset
      FROM bo.ingest_offsets
     WHERE consumer_group = %(group)s AND topic = ANY(%(topics)s)
"""

COPY_EVENTS = """
    COPY bo.event_log (source, topic, "partition", "offset", kafka_timestamp, raw_key, raw_value,
                       headers, value_size, ingested_at, event_id, event_type, schema_version,
                       entity_id, document, traceparent, correlation_id)
    FROM STDIN
"""

UPSERT_NEXT_OFFSET = """
    INSERT INTO bo.ingest_offsets AS o (consumer_group, topic, "partition", next_offset)
    VALUES (%(group)s, %(topic)s, %(partition)s, %(next_offset)s)
    ON CONFLICT (consumer_group, topic, "partition") DO UPDATE
       SET next_offset = EXCLUDED.next_offset, updated_at = now()
     WHERE o.next_offset < EXCLUDED.next_offset
"""

NOTIFY_APPENDED = "SELECT pg_notify('bo_event_log', %(head)s::text)"

SELECT_HEAD = "SELECT coalesce(max(position), 0) FROM bo.event_log"

SELECT_COUNT = "SELECT count(*) FROM bo.event_log"
