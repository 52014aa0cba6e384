"""Appending to and reading the immutable log `bo.event_log`.

Ordering. Every append first takes one transaction-scoped advisory lock, so appenders are
serialised (readers are never blocked), and under it the appender reads the last
position and hash and numbers its rows from there. Each transaction therefore gets all
its positions and commits before the next one gets any, which is what eventsourcing's
`PostgresRecorder._lock_table` achieves with `LOCK TABLE … IN EXCLUSIVE MODE`: a reader
that has read up to P never later finds a newly committed row below P. (The advisory
lock is used because LOCK TABLE in that mode needs UPDATE/DELETE/TRUNCATE privilege,
which the app's role must not have on the log.)

Exactly once. The next offsets (per topic-partition, or per backfill file) live in
`bo.ingest_offsets` and are written in the same transaction as the rows. Inside the
lock, each record below the stored next offset of its stream is dropped as a redelivery,
so a batch committed to the database but not to Kafka is never appended twice, even when
two consumers briefly own one partition during a rebalance.

Tamper evidence. Each row's `row_hash` chains to the previous row's (eventstore/chain.py).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from eventstore import chain, sql
from eventstore.records import KafkaCoordinates, LogRecord

Stream = tuple[str, int]
logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AppendResult:
    appended: int
    redelivered: int
    head: int
    ingested_at: datetime | None
    fresh: Sequence[int] = ()  # indexes of the records appended (the others were already logged)


def append(
    conn: psycopg.Connection[tuple[Any, ...]],
    consumer_group: str,
    records: Sequence[LogRecord],
) -> AppendResult:
    """Append `records` and advance the group's offsets, atomically. Commits.

    If PostgreSQL refuses a batch's data (a `document` jsonb could not hold, despite the
    checks at decode), the batch is appended again without its `document` columns: the
    raw bytes stay the record and ingest never stalls on one message.
    """
    try:
        return _append(conn, consumer_group, records)
    except psycopg.errors.DataError as exc:
        logger.warning("batch refused as data; appending it without parsed documents",
                       extra={"error": str(exc).splitlines()[0], "records": len(records)})
        return _append(conn, consumer_group, [r._replace(document=None) for r in records])


def _append(
    conn: psycopg.Connection[tuple[Any, ...]],
    consumer_group: str,
    records: Sequence[LogRecord],
) -> AppendResult:
    digests = [content_digest(r) for r in records]  # before the lock is taken
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(sql.LOCK_LOG)
        stored = _next_offsets(cur, consumer_group, {r.coordinates.stream[0] for r in records})
        fresh = _not_yet_logged(records, stored)
        head_row = cur.execute(sql.SELECT_CHAIN_HEAD).fetchone()
        head, previous = (int(head_row[0]), bytes(head_row[1])) if head_row else (0, None)
        if not fresh:
            return AppendResult(0, len(records), head, None)
        clock = cur.execute(sql.APPEND_CLOCK).fetchone()
        assert clock is not None
        ingested_at: datetime = clock[0]
        head = _copy(cur, [(records[i], digests[i]) for i in fresh], head, previous, ingested_at)
        _advance(cur, consumer_group, [records[i] for i in fresh])
        cur.execute(sql.NOTIFY_APPENDED, {"head": head})
    return AppendResult(len(fresh), len(records) - len(fresh), head, ingested_at, fresh)


def next_offsets(
    conn: psycopg.Connection[tuple[Any, ...]], consumer_group: str, topics: Iterable[str]
) -> dict[Stream, int]:
    """Where the group resumes: the database's word, not Kafka's committed offsets."""
    with conn.cursor() as cur:
        offsets = _next_offsets(cur, consumer_group, set(topics))
    conn.commit()
    return offsets


def head(conn: psycopg.Connection[tuple[Any, ...]]) -> int:
    with conn.cursor() as cur:
        row = cur.execute(sql.SELECT_HEAD).fetchone()
        return int(row[0]) if row else 0


def _not_yet_logged(records: Sequence[LogRecord], stored: dict[Stream, int]) -> list[int]:
    """Indexes of the records at or beyond the stored next offset, each offset once (the batch is in
    offset order)."""
    expected = dict(stored)
    fresh = []
    for n, record in enumerate(records):
        stream, sequence = record.coordinates.stream, record.coordinates.sequence
        if sequence >= expected.get(stream, 0):
            fresh.append(n)
            expected[stream] = sequence + 1
    return fresh


def _next_offsets(cur: psycopg.Cursor[tuple[Any, ...]], group: str, topics: set[str]) -> dict[Stream, int]:
    cur.execute(sql.SELECT_NEXT_OFFSETS, {"group": group, "topics": sorted(topics)})
    return {(str(t), int(p)): int(o) for t, p, o in cur.fetchall()}


def _copy(cur: psycopg.Cursor[tuple[Any, ...]], rows: Sequence[tuple[LogRecord, bytes]], head: int,
          previous: bytes | None, at: datetime) -> int:
    """COPY the rows (records with their content digests) as positions head+1…, each chained onto
    the one before. Returns the new head.

    This runs under the log lock: only the small chaining hash and the binary COPY are here.
    """
    at_field = chain.time_field(at)
    row_hash = chain.row_hash
    with cur.copy(sql.COPY_EVENTS) as copy:
        copy.set_types(sql.COPY_EVENTS_TYPES)
        write_row = copy.write_row
        for r, digest in rows:
            head += 1
            previous = row_hash(previous, head, at_field, digest)
            c = r.coordinates
            if isinstance(c, KafkaCoordinates):
                where: tuple[Any, ...] = ("kafka", c.topic, c.partition, c.offset, c.timestamp, None, None)
            else:
                where = ("backfill", None, None, None, None, c.file, c.line)
            write_row((
                head, *where, r.raw_key, r.raw_value, r.headers_json, r.value_size, r.value_sha256,
                r.oversized, at, r.event_id, r.event_type, r.schema_version, r.entity_id,
                None if r.document is None else Jsonb(r.document, dumps=_as_is),
                r.traceparent, r.correlation_id, previous,
            ))
    return head


def _as_is(text: str) -> str:
    """The document is already JSON text (checked at decode): send it unchanged."""
    return text


def content_digest(r: LogRecord) -> bytes:
    """`chain.content_digest` of a record: what its row's `row_hash` will cover."""
    c = r.coordinates
    if isinstance(c, KafkaCoordinates):
        return chain.content_digest("kafka", c.topic, c.partition, c.offset, c.timestamp, None, None,
                                    r.raw_key, r.raw_value, r.headers_json, r.value_size, r.value_sha256,
                                    r.oversized)
    return chain.content_digest("backfill", None, None, None, None, c.file, c.line, r.raw_key, r.raw_value,
                                r.headers_json, r.value_size, r.value_sha256, r.oversized)


def _advance(cur: psycopg.Cursor[tuple[Any, ...]], group: str, records: Sequence[LogRecord]) -> None:
    highest: dict[Stream, int] = {}
    for r in records:
        stream = r.coordinates.stream
        highest[stream] = max(highest.get(stream, -1), r.coordinates.sequence)
    cur.executemany(
        sql.UPSERT_NEXT_OFFSET,
        [{"group": group, "topic": t, "partition": p, "next_offset": o + 1}
         for (t, p), o in sorted(highest.items())],
    )
