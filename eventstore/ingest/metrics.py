"""Ingest's metrics, for `bo ingest --metrics-port`.

- `bo_ingest_messages_total` / `bo_ingest_bytes_total` by topic: what was appended (messages/s
  and bytes/s are their rates);
- `bo_ingest_redelivered_total` (already logged, dropped) and `bo_ingest_oversized_total`
  (logged as stubs), by topic;
- `bo_ingest_batch_commit_seconds`: the append transaction, retries included;
- `bo_ingest_delay_seconds` by topic: a message's `ingested_at` − its Kafka timestamp (SPEC 7's
  freshness at ingest; the projector's `bo_freshness_*` histograms carry it to the read tables);
- `bo_ingest_rebalances_total` by kind (assigned, revoked);
- `bo_ingest_consumer_lag` per partition: the partition's high watermark − the next offset
  stored in the database (not Kafka's committed offset: progress lives in the database);
- `bo_ingest_last_append_timestamp_seconds` and `bo_ingest_seconds_since_last_append`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from eventstore.records import KafkaCoordinates, LogRecord
from telemetry.metrics import BATCH_BUCKETS, FRESHNESS_BUCKETS, CountedHistogram

Partition = tuple[str, int]


class IngestMetrics(Collector):
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=False)
        self.messages = Counter("bo_ingest_messages", "messages appended to the log", ["topic"],
                                registry=self.registry)
        self.bytes = Counter("bo_ingest_bytes", "bytes of message values appended to the log", ["topic"],
                             registry=self.registry)
        self.redelivered = Counter("bo_ingest_redelivered", "messages already in the log, dropped", ["topic"],
                                   registry=self.registry)
        self.oversized = Counter("bo_ingest_oversized", "messages over the size limit, logged as stubs", ["topic"],
                                 registry=self.registry)
        self.commit_seconds = Histogram("bo_ingest_batch_commit_seconds",
                                        "one batch's append transaction, retries included",
                                        buckets=BATCH_BUCKETS, registry=self.registry)
        self.delay = CountedHistogram("bo_ingest_delay_seconds", "ingested_at − the message's Kafka timestamp",
                                      FRESHNESS_BUCKETS, ["topic"])
        self.registry.register(self.delay)
        self.rebalances = Counter("bo_ingest_rebalances", "partition assignments and revocations", ["kind"],
                                  registry=self.registry)
        self._lock = threading.Lock()
        self._stored: dict[Partition, int] = {}  # next offset stored in the database
        self._high: dict[Partition, int] = {}  # the partition's high watermark, as last seen
        self._last_append: float | None = None
        self.registry.register(self)

    def appended(self, records: Sequence[LogRecord], fresh: Sequence[int], seconds: float,
                 ingested_at: datetime | None = None) -> None:
        """A batch committed at `ingested_at` (`fresh`: the indexes of the records it appended):
        count, observe each message's delay, and move the stored offsets. One pass over the
        appended records; delays are observed once per topic and millisecond, with their count."""
        self.commit_seconds.observe(seconds)
        appended = records if len(fresh) == len(records) else [records[i] for i in fresh]
        counts: dict[str, list[int]] = {}
        delays: dict[tuple[str, float], int] = {}
        next_offsets: dict[Partition, int] = {}
        for r in appended:
            c = r.coordinates
            stream = c.stream
            topic = stream[0]
            next_offsets[stream] = c.sequence + 1  # a batch is in offset order per partition
            if ingested_at is not None and isinstance(c, KafkaCoordinates) and c.timestamp is not None:
                key = (topic, round((ingested_at - c.timestamp).total_seconds(), 3))
                delays[key] = delays.get(key, 0) + 1
            n = counts.get(topic)
            if n is None:
                n = counts[topic] = [0, 0, 0]
            n[0] += 1
            n[1] += r.value_size
            n[2] += r.oversized
        for (topic, delay), n_delayed in delays.items():
            self.delay.observe(max(0.0, delay), n_delayed, (topic,))
        for topic, (messages, size, oversized) in counts.items():
            self.messages.labels(topic).inc(messages)
            self.bytes.labels(topic).inc(size)
            if oversized:
                self.oversized.labels(topic).inc(oversized)
        if len(appended) < len(records):
            taken = set(fresh)
            for i, r in enumerate(records):
                if i not in taken:
                    self.redelivered.labels(r.coordinates.stream[0]).inc()
        with self._lock:
            self._stored.update(next_offsets)
            self._last_append = time.time()

    def assigned(self, stored: Mapping[Partition, int]) -> None:
        self.rebalances.labels("assigned").inc()
        with self._lock:
            self._stored.update(stored)

    def revoked(self, partitions: Sequence[Partition]) -> None:
        self.rebalances.labels("revoked").inc()
        with self._lock:
            for p in partitions:
                self._stored.pop(p, None)
                self._high.pop(p, None)

    def watermarks(self, high: Mapping[Partition, int]) -> None:
        with self._lock:
            self._high.update(high)

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            stored, high, last = dict(self._stored), dict(self._high), self._last_append
        lag = GaugeMetricFamily("bo_ingest_consumer_lag",
                                "high watermark − next offset stored in the database, per assigned partition",
                                labels=["topic", "partition"])
        for (topic, partition), offset in sorted(stored.items()):
            if (topic, partition) in high:
                lag.add_metric([topic, str(partition)], float(max(0, high[(topic, partition)] - offset)))
        yield lag
        if last is not None:
            yield GaugeMetricFamily("bo_ingest_last_append_timestamp_seconds",
                                    "when the last batch was appended (Unix time)", value=last)
            yield GaugeMetricFamily("bo_ingest_seconds_since_last_append", "seconds since the last batch was appended",
                                    value=max(0.0, time.time() - last))
