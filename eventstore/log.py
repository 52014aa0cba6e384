"""Appending to and reading the immutable log `bo.event_log`.

Ordering. `position` comes from an identity sequence, and a sequence hands out numbers
in the order transactions ask, not the order they commit: two appenders could commit
positions 11 and 10 in that order, and a reader that had already read 11 would never
see 10. Like eventsourcing's `PostgresRecorder._lock_table`, every append first takes
`LOCK TABLE bo.event_log IN EXCLUSIVE MODE`: appenders are serialised (readers are not
blocked, EXCLUSIVE does not conflict with the ACCESS SHARE of a SELECT), so each
transaction gets all its positions and commits before the next one gets any. A reader
that has read up to P therefore never later finds a newly committed row below P.

Exactly once. The consumer's next offsets live in `bo.ingest_offsets` and are written
in the same transaction as the rows. Inside the lock, each record whose offset is below
the stored next offset for its partition is dropped as a redelivery, so a batch that
was committed to the database but not to Kafka is never appended twice, even when two
consumers briefly own one partition during a rebalance.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from eventstore import sql
from eventstore.records import LogRecord

PartitionKey = tuple[str, int]


@dataclass(frozen=True, slots=True)
class AppendResult:
    appended: int
    redelivered: int
    head: int
    ingested_at: datetime | None


def append(
    conn: psycopg.Connection[tuple[Any, ...]],
    consumer_group: str,
    records: Sequence[LogRecord],
) -> AppendResult:
    """Append `records` and advance the group's offsets, atomically. Commits."""
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(sql.LOCK_LOG)
        stored = _next_offsets(cur, consumer_group, {r.coordinates.topic for r in records})
        fresh = _not_yet_logged(records, stored)
        row = cur.execute(sql.APPEND_CLOCK).fetchone()
        assert row is not None
        ingested_at: datetime = row[0]
        if fresh:
            _copy(cur, fresh, ingested_at)
            _advance(cur, consumer_group, fresh)
        head = _head(cur)
        if fresh:
            cur.execute(sql.NOTIFY_APPENDED, {"head": head})
    return AppendResult(len(fresh), len(records) - len(fresh), head, ingested_at if fresh else None)


def next_offsets(
    conn: psycopg.Connection[tuple[Any, ...]], consumer_group: str, topics: Iterable[str]
) -> dict[PartitionKey, int]:
    """Where the group resumes: the database's word, not Kafka's committed offsets."""
    with conn.cursor() as cur:
        offsets = _next_offsets(cur, consumer_group, set(topics))
    conn.commit()
    return offsets


def head(conn: psycopg.Connection[tuple[Any, ...]]) -> int:
    with conn.cursor() as cur:
        return _head(cur)


def _pk(record: LogRecord) -> PartitionKey:
    return (record.coordinates.topic, record.coordinates.partition)


def _not_yet_logged(records: Sequence[LogRecord], stored: dict[PartitionKey, int]) -> list[LogRecord]:
    """Records at or beyond the stored next offset, each offset once (the batch is in offset order)."""
    expected = dict(stored)
    fresh = []
    for record in records:
        if record.coordinates.offset >= expected.get(_pk(record), 0):
            fresh.append(record)
            expected[_pk(record)] = record.coordinates.offset + 1
    return fresh


def _next_offsets(
    cur: psycopg.Cursor[tuple[Any, ...]], group: str, topics: set[str]
) -> dict[PartitionKey, int]:
    cur.execute(sql.SELECT_NEXT_OFFSETS, {"group": group, "topics": sorted(topics)})
    return {(str(t), int(p)): int(o) for t, p, o in cur.fetchall()}


def _copy(cur: psycopg.Cursor[tuple[Any, ...]], records: Sequence[LogRecord], at: datetime) -> None:
    with cur.copy(sql.COPY_EVENTS) as copy:
        for r in records:
            c = r.coordinates
            copy.write_row((
                "kafka", c.topic, c.partition, c.offset, c.timestamp, r.raw_key, r.raw_value,
                Jsonb(r.headers), r.value_size, at, r.event_id, r.event_type, r.schema_version,
                r.entity_id, r.document, r.traceparent, r.correlation_id,
            ))


def _advance(cur: psycopg.Cursor[tuple[Any, ...]], group: str, records: Sequence[LogRecord]) -> None:
    highest: dict[PartitionKey, int] = {}
    for r in records:
        highest[_pk(r)] = max(highest.get(_pk(r), -1), r.coordinates.offset)
    cur.executemany(
        sql.UPSERT_NEXT_OFFSET,
        [{"group": group, "topic": t, "partition": p, "next_offset": o + 1}
         for (t, p), o in sorted(highest.items())],
    )


def _head(cur: psycopg.Cursor[tuple[Any, ...]]) -> int:
    row = cur.execute(sql.SELECT_HEAD).fetchone()
    return int(row[0]) if row else 0
