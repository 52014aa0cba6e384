"""`GET /metrics` (no credentials): Prometheus text format.

The figures are the database's, read at scrape time, so every gunicorn worker answers the
same: per projector version its checkpoint, lag in events and seconds and open dead letters,
and the pairing quality of SPEC 4.3 (`pair_incomplete_ratio`, pairing latency,
`version_missing_cnt`). Per-process request metrics need Prometheus's multiprocess mode
under gunicorn and come with the observability work. While the database is unavailable
the scrape still answers, with `bo_database_up 0` and none of the database's figures.
"""

from __future__ import annotations

from collections.abc import Iterator

import falcon
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from psycopg_pool import ConnectionPool

from eventstore.db import diagnose
from projections.status import projector_status, quality

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class DatabaseFigures(Collector):
    def __init__(self, pool: ConnectionPool) -> None:
        self.pool = pool

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            with self.pool.connection() as conn:
                versions, figures = projector_status(conn), quality(conn)
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
        yield GaugeMetricFamily("bo_pair_incomplete_ratio", "share of pair rows not COMPLETE",
                                value=float(figures["pair_incomplete_ratio"]))
        yield GaugeMetricFamily("bo_version_missing_cnt", "applied events without a version",
                                value=float(figures["version_missing_cnt"]))
        latency = GaugeMetricFamily("bo_pairing_latency_seconds", "completed_at - first_seen_at", labels=["quantile"])
        for quantile, key in (("0.5", "pairing_latency_p50_s"), ("0.95", "pairing_latency_p95_s")):
            if figures[key] is not None:
                latency.add_metric([quantile], float(figures[key]))
        yield latency


class MetricsResource:
    def __init__(self, pool: ConnectionPool) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(DatabaseFigures(pool))

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = CONTENT_TYPE
        resp.data = generate_latest(self.registry)
