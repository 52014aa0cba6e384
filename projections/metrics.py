"""The projections' metrics: what each batch did (counted as it commits), and the database's
figures (read at scrape time, so every process that serves them answers the same).

- per version: log rows read, batch seconds, dead letters written by reason;
- freshness: the time from a row's Kafka timestamp, and from its `ingested_at`, to the commit
  of the batch that projected it (a histogram, observed once per distinct delay of a batch);
- from the database: per version its checkpoint, lag in events and seconds and open dead
  letters; `bo_pair_incomplete_ratio`, `bo_version_missing_cnt`, and the pairing latency
  (`completed_at − first_seen_at` of the active pairs) as a histogram.

While the database is unavailable a scrape still answers, with `bo_database_up 0` and none
of the database's figures.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

import psycopg
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from eventstore.db import diagnose
from projections.status import pairing_latency_histogram, projector_status, quality
from telemetry.metrics import BATCH_BUCKETS, FRESHNESS_BUCKETS, CountedHistogram

# A batch's rows grouped by their delays' sources: the ingest batch (`ingested_at`) and the
# Kafka timestamp to the millisecond. A few dozen groups for thousands of rows.
SELECT_BATCH_TIMES = """
    SELECT ingested_at, date_trunc('milliseconds', kafka_timestamp) AS kafka_timestamp, count(*) AS n
      FROM bo.event_log
     WHERE position > %(after)s AND position <= %(up_to)s
     GROUP BY 1, 2
"""


class ProjectorMetrics:
    """What projector batches did, for one process's `--metrics-port`."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=False)
        labels = ["projector", "version"]
        self.rows = Counter("bo_projector_events", "log rows read and applied (or dead-lettered) per version",
                            labels, registry=self.registry)
        self.batch_seconds = Histogram("bo_projector_batch_duration_seconds",
                                       "one batch's transaction, judging included, per cohort's versions",
                                       labels, buckets=BATCH_BUCKETS, registry=self.registry)
        self.dead_letters = Counter("bo_dead_letters_written", "dead letters written by batches, by reason",
                                    [*labels, "reason"], registry=self.registry)
        self.freshness_kafka = CountedHistogram(
            "bo_freshness_kafka_seconds", "projection commit time − the row's Kafka timestamp",
            FRESHNESS_BUCKETS, labels)
        self.freshness_ingested = CountedHistogram(
            "bo_freshness_ingested_seconds", "projection commit time − the row's ingested_at",
            FRESHNESS_BUCKETS, labels)
        self.registry.register(self.freshness_kafka)
        self.registry.register(self.freshness_ingested)

    def batch_committed(self, versions: Sequence[tuple[str, int]], rows: int, seconds: float,
                        times: Sequence[Mapping[str, Any]], committed_at: datetime,
                        dead_letters: Mapping[tuple[str, int], Mapping[str, int]]) -> None:
        for name, version in versions:
            labels = (name, str(version))
            self.rows.labels(*labels).inc(rows)
            self.batch_seconds.labels(*labels).observe(seconds)
            for reason, n in dead_letters.get((name, version), {}).items():
                self.dead_letters.labels(*labels, reason).inc(n)
            for group in times:
                n = int(group["n"])
                self.freshness_ingested.observe(_seconds(committed_at - group["ingested_at"]), n, labels)
                if group["kafka_timestamp"] is not None:
                    self.freshness_kafka.observe(_seconds(committed_at - group["kafka_timestamp"]), n, labels)


def _seconds(delta: Any) -> float:
    return max(0.0, float(delta.total_seconds()))


class DatabaseFigures(Collector):
    """The projections' figures, read from the database at each scrape."""

    def __init__(self, connection: Callable[[], AbstractContextManager[psycopg.Connection[Any]]]) -> None:
        self.connection = connection

    def collect(self) -> Iterator[Metric]:
        try:
            with self.connection() as conn:
                versions, figures = projector_status(conn), quality(conn)
                latency = pairing_latency_histogram(conn, FRESHNESS_BUCKETS)
        except Exception as exc:
            diagnosis = diagnose(exc)
            if diagnosis is None or not diagnosis.transient:
                raise
            yield GaugeMetricFamily("bo_database_up", "the database answered this scrape", value=0.0)
            return
        yield GaugeMetricFamily("bo_database_up", "the database answered this scrape", value=1.0)
        labels = ["projector", "version", "status"]
        families = {
            "checkpoint": GaugeMetricFamily("bo_projector_checkpoint", "last applied log position", labels=labels),
            "lag_events": GaugeMetricFamily("bo_projector_lag_events", "log rows not applied yet", labels=labels),
            "lag_seconds": GaugeMetricFamily("bo_projector_lag_seconds", "age of the oldest row not applied yet",
                                             labels=labels),
            "open_dead_letters": GaugeMetricFamily("bo_dead_letters_open", "open dead letters", labels=labels),
        }
        for v in versions:
            values = [v["name"], str(v["version"]), v["status"]]
            for key, family in families.items():
                family.add_metric(values, float(v[key]))
        yield from families.values()
        if versions:
            yield GaugeMetricFamily("bo_log_head", "the log's last position", value=float(versions[0]["head"]))
        yield GaugeMetricFamily("bo_pair_incomplete_ratio", "share of pair rows not COMPLETE",
                                value=float(figures["pair_incomplete_ratio"]))
        yield GaugeMetricFamily("bo_version_missing_cnt", "applied events without a version",
                                value=float(figures["version_missing_cnt"]))
        histogram = HistogramMetricFamily("bo_pairing_latency_seconds",
                                          "completed_at − first_seen_at of the active version's complete pairs")
        histogram.add_metric([], [(repr(float(b)), float(n)) for b, n in latency.buckets] + [("+Inf", latency.count)],
                             sum_value=latency.total)
        yield histogram
