"""`GET /metrics` (no credentials): Prometheus text format.

Two kinds of figures:
- the requests this API answered (api/metrics.py): under gunicorn, every worker's, merged
  from the multiprocess directory (telemetry/metrics.py);
- the database's, read at scrape time (projections/metrics.py), so every worker answers the
  same: per projector version its checkpoint and lag, open dead letters, pairing quality.
"""

from __future__ import annotations

import falcon
from prometheus_client import generate_latest
from psycopg_pool import ConnectionPool

from api.metrics import RequestMetrics
from projections.metrics import DatabaseFigures
from telemetry.metrics import multiprocess_dir, multiprocess_registry, registry_of

# The classic text format (what generate_latest writes), which every Prometheus reads.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class MetricsResource:
    def __init__(self, pool: ConnectionPool, requests: RequestMetrics) -> None:
        figures = DatabaseFigures(pool.connection)
        if multiprocess_dir() is not None:
            self.registry = multiprocess_registry(figures)
        else:
            self.registry = registry_of(requests.registry, figures)

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = CONTENT_TYPE
        resp.data = generate_latest(self.registry)
