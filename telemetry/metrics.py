"""How a bo process exposes its Prometheus metrics: the buckets, the `--metrics-port` server,
and gunicorn's multiprocess directory.

The metrics themselves are declared by the module that owns what they measure:
`api/metrics.py` (requests), `eventstore/ingest/metrics.py` (ingest), `projections/metrics.py`
(projector batches, freshness, and the database's figures read at scrape time).

Labels never hold ids (a tx, order, wallet or event id, a path): only route templates,
status codes, topics, partitions, projector names and versions, reasons. Their number is
bounded by the code and the configuration, never by the data (tests/unit/test_metric_labels.py).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# Request latency: resolves 1 ms to 2 s, with the SLO's 200 ms as a bucket boundary (SPEC 7).
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0)
# Batch durations (ingest commits, projector batches).
BATCH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Freshness and pairing latency: the SLO's 1 s and 5 s as boundaries, up to an hour.
FRESHNESS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)


def serve_metrics(registry: Collector, port: int, host: str = "127.0.0.1") -> WSGIServer:
    """Serve `GET /metrics` for `registry` on host:port, in a daemon thread (port 0: any free port)."""
    server, _ = start_http_server(port, addr=host, registry=registry)
    return server


def bound_port(server: WSGIServer) -> int:
    return int(server.server_address[1])


class CountedHistogram(Collector):
    """A histogram observed in groups: `observe(value, count)` adds `count` observations of `value`.

    A projector batch applies thousands of rows that share a handful of distinct delays
    (rows of one ingest batch share `ingested_at`). It observes each distinct delay once,
    with its count, instead of one `Histogram.observe` per row.
    """

    def __init__(self, name: str, documentation: str, buckets: Sequence[float], labelnames: Sequence[str] = ()
                 ) -> None:
        self.name, self.documentation = name, documentation
        self.bounds = tuple(buckets)
        self.labelnames = tuple(labelnames)
        self._lock = threading.Lock()
        self._series: dict[tuple[str, ...], tuple[list[int], list[float]]] = {}

    def observe(self, value: float, count: int = 1, labels: Sequence[str] = ()) -> None:
        key = tuple(labels)
        with self._lock:
            buckets, total = self._series.setdefault(key, ([0] * (len(self.bounds) + 1), [0.0]))
            index = next((i for i, bound in enumerate(self.bounds) if value <= bound), len(self.bounds))
            buckets[index] += count
            total[0] += value * count

    def collect(self) -> Iterator[HistogramMetricFamily]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        with self._lock:
            series = {key: (list(b), t[0]) for key, (b, t) in self._series.items()}
        for key, (buckets, total) in sorted(series.items()):
            cumulative, pairs = 0, []
            for bound, n in zip((*[repr(float(b)) for b in self.bounds], "+Inf"), buckets, strict=True):
                cumulative += n
                pairs.append((bound, float(cumulative)))
            family.add_metric(list(key), pairs, sum_value=total)
        yield family


def registry_of(*collectors: Collector) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    for collector in collectors:
        registry.register(collector)
    return registry


# --- gunicorn's multiprocess mode (bo serve) -----------------------------------------------------

@contextmanager
def multiprocess_directory() -> Iterator[Path]:
    """gunicorn's multiprocess metrics directory, empty at start: PROMETHEUS_MULTIPROC_DIR when
    set (a tmpfs in a container), else a temporary directory removed at exit."""
    given = os.environ.get(MULTIPROC_ENV)
    path = Path(given) if given else Path(tempfile.mkdtemp(prefix="bo-api-metrics-"))
    if given and path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.environ[MULTIPROC_ENV] = str(path)
    owner = os.getpid()
    try:
        yield path
    finally:
        # A gunicorn worker is forked inside this block and leaves by SystemExit through the
        # master's frames: only the process that made the directory removes it, or the first
        # worker to exit would take every other worker's files (and the next one's boot) with it.
        if not given and os.getpid() == owner:
            shutil.rmtree(path, ignore_errors=True)
            os.environ.pop(MULTIPROC_ENV, None)


def use_multiprocess_values() -> None:
    """In a gunicorn worker, before its metrics are made: keep their values in the directory.

    prometheus_client picks its value store when first imported, and the master may have
    imported it before the directory was named; metrics read the store when they are made.
    """
    from prometheus_client import values

    if multiprocess_dir() is None:
        raise RuntimeError(f"{MULTIPROC_ENV} is not set")
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]


def multiprocess_dir() -> Path | None:
    value = os.environ.get(MULTIPROC_ENV)
    return Path(value) if value else None


def multiprocess_registry(*collectors: Collector) -> CollectorRegistry:
    """Every worker's metrics, merged from the multiprocess directory, plus `collectors`."""
    from prometheus_client import multiprocess

    registry = registry_of(*collectors)
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


def mark_worker_dead(pid: int) -> None:
    """gunicorn's `child_exit`: a dead worker's live gauges (requests in flight) stop counting."""
    from prometheus_client import multiprocess

    if multiprocess_dir() is not None:
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
