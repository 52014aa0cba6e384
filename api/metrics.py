"""The API's request metrics: by route template and status, latency, requests in flight, errors.

Under gunicorn (`bo serve`) every worker writes its figures to the multiprocess directory
and a scrape merges them (telemetry/metrics.py): the master serves them on `--metrics-port`, where
a busy worker cannot hold a scrape up, and each worker's `GET /metrics` serves them too.
The route label is the route's template (`/admin/tx/{tx_id}`), never the path asked for: a
request that matches no route counts under `unmatched`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import falcon
from falcon.routing import CompiledRouter
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from telemetry.metrics import LATENCY_BUCKETS

UNMATCHED = "unmatched"


class RequestMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.requests = Counter("bo_api_requests", "requests answered, by route template, method and status",
                                ["route", "method", "status"], registry=self.registry)
        self.duration = Histogram("bo_api_request_duration_seconds",
                                  "time from the request's arrival to its answer, by route template and method",
                                  ["route", "method"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.in_flight = Gauge("bo_api_requests_in_flight", "requests being served",
                               multiprocess_mode="livesum", registry=self.registry)
        self.errors = Counter("bo_api_errors", "answers with a 5xx status, by route template and status",
                              ["route", "status"], registry=self.registry)
        self.audit_failures = Counter("bo_api_audit_write_failures",
                                      "audit rows that could not be written (each answer became a 503)",
                                      registry=self.registry)


class RequestMetricsMiddleware:
    """The outermost middleware: it times everything the other middleware and the resource do.

    It knows the app's routes itself: an answer given before routing (401 from authentication,
    406) still counts under the route asked for.
    """

    def __init__(self, metrics: RequestMetrics, routes: Mapping[str, object]) -> None:
        self.metrics = metrics
        self.router = CompiledRouter()
        for template, resource in routes.items():
            self.router.add_route(template, resource)

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.metrics_started = time.perf_counter()
        self.metrics.in_flight.inc()

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource: object,
                         req_succeeded: bool) -> None:
        started = getattr(req.context, "metrics_started", None)
        if started is None:  # process_request did not run (an earlier middleware raised)
            return
        self.metrics.in_flight.dec()
        route = req.uri_template or self._template(req.path)
        status = str(resp.status_code)
        self.metrics.requests.labels(route, req.method, status).inc()
        self.metrics.duration.labels(route, req.method).observe(time.perf_counter() - started)
        if resp.status_code >= 500:
            self.metrics.errors.labels(route, status).inc()

    def _template(self, path: str) -> str:
        found = self.router.find(path)
        return str(found[3]) if found else UNMATCHED
