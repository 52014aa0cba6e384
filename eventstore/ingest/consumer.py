"""The ingest loop: consume a batch from Kafka, append it to the log with its offsets, repeat.

Commit order (the exactly-once argument, step by step):
1. `consume()` a batch; nothing is acknowledged to Kafka yet.
2. In one PostgreSQL transaction: lock the log, drop records below the stored next
   offsets (redeliveries), COPY the rest, store the new next offsets, commit.
3. Only then commit the same offsets to Kafka, asynchronously, for lag tools. If the
   process dies between 2 and 3, the next owner of the partition seeks to the offsets
   stored in step 2 (see `_on_assign`), so nothing is appended twice and nothing lost.
If PostgreSQL is unreachable in step 2, the batch is kept in memory and retried with
capped backoff; no further messages are consumed meanwhile. An error that retrying cannot
heal (a missing privilege, a missing table) ends the loop with `PermanentDatabaseError`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, TopicPartition
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from eventstore import db
from eventstore import log as event_log
from eventstore.errors import BrokerError, DatabaseUnavailableError
from eventstore.health import Health
from eventstore.ingest.decode import DEFAULT_MAX_VALUE_BYTES, decode
from eventstore.ingest.metrics import IngestMetrics
from eventstore.records import KafkaCoordinates, LogRecord
from telemetry.tracing import links

logger = logging.getLogger(__name__)
TRACER = trace.get_tracer(__name__)

# While no message arrives, the database is asked this often whether it answers.
IDLE_CHECK_EVERY_S = 5.0
# How often the partitions' high watermarks (librdkafka's cached copies: no broker call) are read.
WATERMARKS_EVERY_S = 1.0


@dataclass(frozen=True, slots=True)
class IngestConfig:
    database_url: str
    bootstrap_servers: str
    group_id: str
    topics: tuple[str, ...]
    batch_size: int = 2000
    session_timeout_ms: int = 10_000
    poll_timeout_s: float = 0.5
    max_message_bytes: int = DEFAULT_MAX_VALUE_BYTES
    group_instance_id: str | None = None
    # librdkafka settings of the deployment (Event Hubs: SASL_SSL OAUTHBEARER, bo/entra.py).
    client_settings: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class IngestStats:
    appended: int = 0
    redelivered: int = 0
    batches: int = 0
    oversized: int = 0
    # Append-transaction times of the most recent batches, for percentiles in logs and benchmarks.
    batch_ms: deque[float] = field(default_factory=lambda: deque(maxlen=10_000))

    def percentile_ms(self, share: float) -> float:
        if not self.batch_ms:
            return 0.0
        ordered = sorted(self.batch_ms)
        return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))], 2)


def kafka_consumer_config(config: IngestConfig) -> dict[str, Any]:
    return {
        "bootstrap.servers": config.bootstrap_servers,
        "group.id": config.group_id,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        # Every assigned partition is positioned explicitly (_on_assign); an offset that is
        # out of range must be an error, never a silent jump.
        "auto.offset.reset": "error",
        "session.timeout.ms": config.session_timeout_ms,
        "heartbeat.interval.ms": max(1000, config.session_timeout_ms // 4),
        "fetch.queue.backoff.ms": 10,
        "log_level": 3,
        # Static membership: a restarted process with the same id takes its partitions back
        # at once instead of waiting for the dead member's session to time out.
        **({"group.instance.id": config.group_instance_id} if config.group_instance_id else {}),
        **config.client_settings,
    }


class IngestConsumer:
    """Appends every message of `config.topics` to `bo.event_log`, exactly once."""

    def __init__(self, config: IngestConfig, health: Health | None = None,
                 metrics: IngestMetrics | None = None) -> None:
        self.config = config
        self.health = health or Health("ingest")
        self.metrics = metrics or IngestMetrics()
        self.stats = IngestStats()
        self._watermarks_at = 0.0
        self._conn: psycopg.Connection[tuple[Any, ...]] | None = None
        self._consumer = Consumer(kafka_consumer_config(config))
        self._last_activity: float | None = None
        self._checked_at = time.monotonic()  # when the database last answered or was last asked
        self._stop = threading.Event()

    def _idle_for(self) -> float:
        """Seconds since the last message or assignment (0 while never assigned)."""
        return 0.0 if self._last_activity is None else time.monotonic() - self._last_activity

    def run(self, stop: threading.Event, *, idle_exit_s: float | None = None) -> IngestStats:
        """Consume until `stop` is set (or, with `idle_exit_s`, until that long without messages)."""
        self._stop = stop
        self._consumer.subscribe(list(self.config.topics), on_assign=self._on_assign, on_revoke=self._on_revoke)
        try:
            while not stop.is_set():
                try:  # an assignment (offsets loaded from the database) happens inside consume()
                    messages = self._consumer.consume(self.config.batch_size, self.config.poll_timeout_s)
                except DatabaseUnavailableError:
                    if stop.is_set():
                        break
                    raise
                records = self._records(messages)
                if time.monotonic() - self._watermarks_at >= WATERMARKS_EVERY_S:
                    self._read_watermarks()
                if records:
                    self._last_activity = time.monotonic()
                    try:
                        self._append_with_retries(records, stop)
                    except DatabaseUnavailableError:
                        if stop.is_set():  # asked to stop during an outage: the batch is
                            break          # not committed anywhere and will be consumed again
                        raise
                elif idle_exit_s is not None and self._idle_for() > idle_exit_s:
                    break
                elif not self.health.ok or time.monotonic() - self._checked_at > IDLE_CHECK_EVERY_S:
                    self._ping()
        finally:
            self._consumer.close()
            if self._conn is not None:
                self._conn.close()
        return self.stats

    def _records(self, messages: Sequence[Message]) -> list[LogRecord]:
        records = []
        for message in messages:
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    continue
                if error.fatal() or error.code() == KafkaError._AUTO_OFFSET_RESET:
                    # _AUTO_OFFSET_RESET: our position fell out of the partition's range
                    # (retention): stop rather than skip messages.
                    raise BrokerError(str(error), topic=message.topic(), partition=message.partition())
                quiet = error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART  # not created yet
                logger.log(logging.INFO if quiet else logging.WARNING, "kafka error",
                           extra={"error": str(error)})
                continue
            record = _to_record(message, self.config.max_message_bytes)
            if record.oversized:
                self.stats.oversized += 1
                logger.warning("message over the size limit logged as a stub", extra={
                    "topic": message.topic(), "partition": message.partition(), "offset": message.offset(),
                    "value_size": record.value_size, "limit": self.config.max_message_bytes})
            records.append(record)
        return records

    def _append_with_retries(self, records: list[LogRecord], stop: threading.Event) -> None:
        started = time.perf_counter()
        with TRACER.start_as_current_span("ingest batch", kind=SpanKind.CONSUMER) as span:
            if span.is_recording():  # linked to each message's trace, when its producer sampled it
                for link in links(r.traceparent for r in records):
                    span.add_link(link.context)
                span.set_attribute("messaging.batch.message_count", len(records))
            result = db.with_retries(lambda: event_log.append(self._connection(), self.config.group_id, records),
                                     what="append batch", stop=stop, health=self.health,
                                     on_transient=self._drop_connection)
            span.set_attribute("bo.log.head", result.head)
        seconds = time.perf_counter() - started
        self.health.progressed()
        self._checked_at = time.monotonic()
        self.metrics.appended(records, result.fresh, seconds, result.ingested_at)
        self.stats.batch_ms.append(seconds * 1000)
        self.stats.appended += result.appended
        self.stats.redelivered += result.redelivered
        self.stats.batches += 1
        self._commit_to_kafka(records)
        logger.debug("batch appended", extra={"appended": result.appended, "head": result.head})

    def _ping(self) -> None:
        """While idle, find out whether the database answers (one try), so /healthz tells the truth."""
        def ping() -> None:
            self._connection().execute("SELECT 1")
            self._connection().rollback()

        self._checked_at = time.monotonic()
        try:
            db.with_retries(ping, what="ping", attempts=1, health=self.health, on_transient=self._drop_connection)
            self.health.reachable()
        except DatabaseUnavailableError as exc:
            diagnosis = db.diagnose(exc.__cause__ or exc)
            self.health.degraded(str(exc), transient=True, sqlstate=diagnosis.sqlstate if diagnosis else None)

    def _commit_to_kafka(self, records: list[LogRecord]) -> None:
        """Convenience only (lag tools): progress that counts is already in the database."""
        highest: dict[tuple[str, int], int] = {}
        for r in records:
            key = r.coordinates.stream
            highest[key] = max(highest.get(key, -1), r.coordinates.sequence)
        offsets = [TopicPartition(t, p, o + 1) for (t, p), o in highest.items()]
        try:
            self._consumer.commit(offsets=offsets, asynchronous=True)
        except Exception as exc:  # a failed convenience commit must not stop ingestion
            logger.info("kafka offset commit skipped", extra={"error": str(exc)})

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Resume every assigned partition from the offsets stored in the database."""
        def load() -> dict[tuple[str, int], int]:
            return event_log.next_offsets(self._connection(), self.config.group_id, {p.topic for p in partitions})

        stored = db.with_retries(load, what="load offsets", stop=self._stop, health=self.health,
                                 on_transient=self._drop_connection)
        for p in partitions:
            p.offset = stored.get((p.topic, p.partition), OFFSET_BEGINNING)
            if p.offset != OFFSET_BEGINNING:
                _refuse_if_out_of_range(consumer, p)
        consumer.assign(partitions)
        self.metrics.assigned({(p.topic, p.partition): max(0, p.offset) for p in partitions})  # beginning: 0
        self._last_activity = time.monotonic()
        logger.info("partitions assigned", extra={
            "assignment": {f"{p.topic}[{p.partition}]": p.offset for p in partitions}})

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.metrics.revoked([(p.topic, p.partition) for p in partitions])

    def _read_watermarks(self) -> None:
        """The assigned partitions' high watermarks, for the lag metric: librdkafka's cached
        copies, updated by every fetch (no broker round trip)."""
        self._watermarks_at = time.monotonic()
        high = {}
        for p in self._consumer.assignment():
            try:
                _, end = self._consumer.get_watermark_offsets(p, cached=True)
            except Exception as exc:  # a figure for a metric must never stop ingestion
                logger.debug("watermarks unavailable", extra={"error": str(exc)})
                continue
            if end >= 0:
                high[(p.topic, p.partition)] = end
        self.metrics.watermarks(high)

    def _connection(self) -> psycopg.Connection[tuple[Any, ...]]:
        if self._conn is None or self._conn.closed:
            self._conn = db.connect(self.config.database_url)
        return self._conn

    def _drop_connection(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None


def _refuse_if_out_of_range(consumer: Consumer, partition: TopicPartition) -> None:
    """Stop rather than skip messages silently.

    A stored offset past the partition's end means the topic was recreated or the broker
    lost data: resuming would treat its new messages as already logged. One before the
    partition's start means messages expired before they were logged. Both need an
    operator's decision (docs/decisions.md, entry 14).
    """
    low, high = consumer.get_watermark_offsets(partition, timeout=10)
    where = f"{partition.topic}[{partition.partition}]"
    if partition.offset > high:
        raise BrokerError(
            f"stored next offset {partition.offset} is beyond the end ({high}) of {where}: the topic was "
            "recreated or the broker lost data; refusing to skip its messages",
            topic=partition.topic, partition=partition.partition)
    if partition.offset < low:
        raise BrokerError(
            f"stored next offset {partition.offset} is before the start ({low}) of {where}: messages "
            f"{partition.offset}..{low - 1} expired before they were logged; refusing to skip them",
            topic=partition.topic, partition=partition.partition)


def _to_record(message: Message, max_value_bytes: int) -> LogRecord:
    ts_type, ts_ms = message.timestamp()
    timestamp = _kafka_time(ts_ms) if ts_type else None
    topic, partition, offset = message.topic(), message.partition(), message.offset()
    assert topic is not None and partition is not None and offset is not None
    coordinates = KafkaCoordinates(topic, partition, offset, timestamp)
    return decode(coordinates, _bytes(message.key()), _bytes(message.value()), _headers(message),
                  max_value_bytes=max_value_bytes)


def _kafka_time(ms: int) -> datetime | None:
    """The Kafka timestamp, or None when a producer set one that no datetime can hold."""
    try:
        return datetime.fromtimestamp(ms / 1000, UTC) if ms >= 0 else None
    except (ValueError, OverflowError, OSError):
        return None


def _bytes(value: str | bytes | None) -> bytes | None:
    return value.encode("utf-8") if isinstance(value, str) else value


def _headers(message: Message) -> list[tuple[str, bytes | None]]:
    raw = message.headers() or []
    pairs = raw.items() if isinstance(raw, dict) else raw
    return [(name, _bytes(value)) for name, value in pairs]
