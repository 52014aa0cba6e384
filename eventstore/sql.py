"""Named SQL statements for the event log and the stored progress. Values are always parameters."""

from __future__ import annotations

# Serialise appenders (see eventstore/log.py). An advisory lock rather than LOCK TABLE:
# LOCK TABLE … IN EXCLUSIVE MODE needs UPDATE, DELETE or TRUNCATE privilege on the table,
# which the application's role must never have on the log.
LOCK_LOG = "SELECT pg_advisory_xact_lock(7165135402856769377)"  # 'bo.event_log', as a bigint

# Taken after the lock, so that ingested_at never decreases as position increases.
APPEND_CLOCK = "SELECT clock_timestamp()"

SELECT_CHAIN_HEAD = "SELECT position, row_hash FROM bo.event_log ORDER BY position DESC LIMIT 1"
# What a signed checkpoint records of the log, and finds again when it is verified.
# What a signed checkpoint records of the log (bo/checkpoints.py): its head, as lane 0 of one lane.
SELECT_CHECKPOINT_HEADS = """
    SELECT 0 AS lane, position, row_hash, ingested_at FROM bo.event_log ORDER BY position DESC LIMIT 1
"""
SELECT_LANE_HEAD = "SELECT position FROM bo.event_log ORDER BY position DESC LIMIT 1"
SELECT_ROW_HASH_AT = "SELECT row_hash FROM bo.event_log WHERE position = %(position)s"
SELECT_FIRST_EARLIER_AFTER = """
    SELECT min(position) FROM bo.event_log WHERE position > %(position)s AND ingested_at < %(ingested_at)s
"""
# The log has one lane (0): when its head was signed, there is nowhere else to look.
SELECT_FIRST_EARLIER_ELSEWHERE = """
    SELECT min(position) FROM bo.event_log
     WHERE NOT (0 = ANY(%(lanes)s::int[])) AND position > %(after)s AND ingested_at < %(ingested_at)s
"""

SELECT_NEXT_OFFSETS = """
    SELECT topic, "partition", next_offset
      FROM bo.ingest_offsets
     WHERE consumer_group = %(group)s AND topic = ANY(%(topics)s)
"""

COPY_EVENTS = """
    COPY bo.event_log (position, source, topic, "partition", "offset", kafka_timestamp,
                       source_file, source_line, raw_key, raw_value, headers, value_size,
                       value_sha256, oversized, ingested_at, event_id, event_type, schema_version,
                       entity_id, document, traceparent, correlation_id, row_hash)
    FROM STDIN (FORMAT BINARY)
"""
# Binary COPY: `headers` (json) goes as text, whose binary form json accepts as is; `document`
# (jsonb) goes through psycopg's Jsonb wrapper with the message's own text (see log._copy).
COPY_EVENTS_TYPES = (
    "int8", "text", "text", "int4", "int8", "timestamptz", "text", "int8", "bytea", "bytea", "text", "int4",
    "bytea", "bool", "timestamptz", "text", "text", "int4", "text", "jsonb", "text", "text", "bytea",
)

# `topic` holds the stream: a Kafka topic, or a backfill file's identity (partition 0).
UPSERT_NEXT_OFFSET = """
    INSERT INTO bo.ingest_offsets AS o (consumer_group, topic, "partition", next_offset)
    VALUES (%(group)s, %(topic)s, %(partition)s, %(next_offset)s)
    ON CONFLICT (consumer_group, topic, "partition") DO UPDATE
       SET next_offset = EXCLUDED.next_offset, updated_at = now()
     WHERE o.next_offset < EXCLUDED.next_offset
"""

NOTIFY_APPENDED = "SELECT pg_notify('bo_event_log', %(head)s::text)"

SELECT_HEAD = "SELECT coalesce(max(position), 0) FROM bo.event_log"

# Everything `bo log verify` re-derives, in log order.
SELECT_FOR_VERIFY = """
    SELECT position, source, topic, "partition", "offset", kafka_timestamp, source_file,
           source_line, raw_key, raw_value, headers::text AS headers_json, value_size,
           value_sha256, oversized, ingested_at, event_id, event_type, schema_version,
           entity_id, traceparent, correlation_id, document IS NULL AS document_is_null, row_hash
      FROM bo.event_log
     WHERE position > %(after)s
     ORDER BY position
     LIMIT %(limit)s
"""
