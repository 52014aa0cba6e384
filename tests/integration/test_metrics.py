"""Each process's metrics, scraped for real and read with Prometheus's own parser.

The API through its WSGI app, the projector through a runner over a real log, ingest through
a real consumer of the development broker, each scraped over HTTP where the process serves
them on `--metrics-port` (telemetry/metrics.py).
"""

from __future__ import annotations

import threading
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import falcon.testing
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from bo.embedded import DevBroker
from bo.generate import StreamShape, generate
from bo.publish import publish
from eventstore.db import connect, open_pool
from eventstore.ingest.consumer import IngestConfig, IngestConsumer
from eventstore.ingest.metrics import IngestMetrics
from projections.metrics import DatabaseFigures, ProjectorMetrics
from telemetry.metrics import bound_port, registry_of, serve_metrics
from tests.conftest import SAMPLES, free_port, random_ref
from tests.integration.helpers import api_client, append_all, rows, runner, sample_records

Samples = dict[str, list[Any]]


def parse(text: str) -> Samples:
    """Family name → its samples (name, labels, value)."""
    return {family.name: family.samples for family in text_string_to_metric_families(text)}


def value(samples: Samples, family: str, sample: str, **labels: str) -> float:
    matching = [s.value for s in samples.get(family, []) if s.name == sample and s.labels == labels]
    assert len(matching) == 1, f"{sample}{labels}: {len(matching)} samples in {samples.get(family)}"
    return float(matching[0])


def scrape(url: str) -> Samples:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return parse(resp.read().decode())


@pytest.fixture(scope="module")
def projected(database_url: str) -> str:
    append_all(database_url, sample_records(SAMPLES))
    return database_url


@pytest.fixture(scope="module")
def client(projected: str) -> Iterator[falcon.testing.TestClient]:
    runner(projected).catch_up()
    pool = open_pool(projected)
    yield api_client(pool)
    pool.close()


def test_request_count_equals_the_requests_sent_by_route_template_and_status(
        client: falcon.testing.TestClient) -> None:
    for _ in range(7):
        assert client.simulate_get("/admin/tx/tx-1c").status_code == 200
    for n in range(3):
        assert client.simulate_get(f"/admin/tx/nobody-{n}").status_code == 404
    for n in range(2):
        assert client.simulate_get(f"/no/such/route/{n}").status_code == 404
    samples = parse(client.simulate_get("/metrics", headers={"Accept": "text/plain"}).text)
    route = "/admin/tx/{tx_id}"
    assert value(samples, "bo_api_requests", "bo_api_requests_total", route=route, method="GET", status="200") == 7
    assert value(samples, "bo_api_requests", "bo_api_requests_total", route=route, method="GET", status="404") == 3
    assert value(samples, "bo_api_requests", "bo_api_requests_total",
                 route="unmatched", method="GET", status="404") == 2
    duration = "bo_api_request_duration_seconds"
    assert value(samples, duration, f"{duration}_count", route=route, method="GET") == 10
    assert value(samples, duration, f"{duration}_bucket", route=route, method="GET", le="+Inf") == 10
    assert value(samples, duration, f"{duration}_bucket", route=route, method="GET", le="0.001") <= 10
    assert value(samples, "bo_api_requests_in_flight", "bo_api_requests_in_flight") == 1  # this scrape
    # The database's figures are served beside them.
    assert value(samples, "bo_database_up", "bo_database_up") == 1


def test_answers_of_5xx_count_as_errors() -> None:
    """An API whose database does not answer (nothing listens on its port) fails closed, 503."""
    pool = open_pool(f"postgresql://bo@127.0.0.1:{free_port()}/bo", wait_s=0.5)
    client = api_client(pool)
    try:
        assert client.simulate_get("/admin/tx/tx-1c").status_code == 503
        assert client.simulate_get("/admin/tx/tx-1c").status_code == 503
        samples = parse(client.simulate_get("/metrics", headers={"Accept": "text/plain"}).text)
    finally:
        pool.close()
    assert value(samples, "bo_api_errors", "bo_api_errors_total", route="/admin/tx/{tx_id}", status="503") == 2
    assert value(samples, "bo_api_requests", "bo_api_requests_total",
                 route="/admin/tx/{tx_id}", method="GET", status="503") == 2
    assert value(samples, "bo_database_up", "bo_database_up") == 0


def test_projector_metrics_count_what_its_batches_applied(projected: str) -> None:
    project = runner(projected, batch_size=7)
    project.catch_up()  # whatever another test left unprojected
    before = int(rows(projected, "SELECT max(position) AS head FROM bo.event_log")[0]["head"])
    append_all(projected, sample_records(SAMPLES, start_offset=10_000))  # redeliveries of the samples, re-logged
    metrics = ProjectorMetrics()
    metrics.registry.register(DatabaseFigures(lambda: connect(projected)))
    server = serve_metrics(metrics.registry, 0)
    try:
        project.metrics = metrics
        project.catch_up()
        samples = scrape(f"http://127.0.0.1:{bound_port(server)}/metrics")
    finally:
        server.shutdown()
    head = int(rows(projected, "SELECT max(position) AS head FROM bo.event_log")[0]["head"])
    read = head - before
    assert read > 7
    for name in ("ledger_entries", "payment_orders", "payment_ledger_pairs"):
        labels = {"projector": name, "version": "1"}
        assert value(samples, "bo_projector_events", "bo_projector_events_total", **labels) == read
        batches = value(samples, "bo_projector_batch_duration_seconds",
                        "bo_projector_batch_duration_seconds_count", **labels)
        assert batches == -(-read // 7)  # one observation per batch of 7
        assert value(samples, "bo_freshness_ingested_seconds", "bo_freshness_ingested_seconds_count",
                     **labels) == read
        assert value(samples, "bo_projector_checkpoint", "bo_projector_checkpoint", status="ACTIVE", **labels) == head
        assert value(samples, "bo_projector_lag_events", "bo_projector_lag_events", status="ACTIVE", **labels) == 0
        written = rows(projected, """SELECT reason, count(*) AS n FROM bo.dead_letters
                                     WHERE projector = %(p)s AND projector_version = 1 AND position > %(before)s
                                     GROUP BY reason""", {"p": name, "before": before})
        assert written, "the re-logged samples hold conflicts and invalid rows"
        for row in written:
            assert value(samples, "bo_dead_letters_written", "bo_dead_letters_written_total",
                         reason=row["reason"], **labels) == row["n"]
    complete = rows(projected, "SELECT count(*) AS n FROM bo.payment_ledger_pairs WHERE completed_at IS NOT NULL")
    assert complete[0]["n"] > 0
    assert value(samples, "bo_pairing_latency_seconds", "bo_pairing_latency_seconds_count") == complete[0]["n"]
    assert value(samples, "bo_pairing_latency_seconds", "bo_pairing_latency_seconds_bucket",
                 le="+Inf") == complete[0]["n"]


def test_ingest_metrics_count_messages_and_bytes_and_lag_falls_to_zero(
        database_url: str, broker: DevBroker, topics: tuple[str, str]) -> None:
    messages = list(generate(StreamShape(payments=20, seed=7), *topics))
    publish(broker.bootstrap, iter(messages))
    metrics = IngestMetrics()
    server = serve_metrics(metrics.registry, 0)
    url = f"http://127.0.0.1:{bound_port(server)}/metrics"
    consumer = IngestConsumer(IngestConfig(database_url, broker.bootstrap, random_ref("group"), topics,
                                           batch_size=50, session_timeout_ms=6000), metrics=metrics)
    stop = threading.Event()
    thread = threading.Thread(target=consumer.run, args=(stop,), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            samples = scrape(url)
            appended = sum(s.value for s in samples.get("bo_ingest_messages", [])
                           if s.name == "bo_ingest_messages_total")
            lag = [s.value for s in samples.get("bo_ingest_consumer_lag", [])]
            if appended == len(messages) and lag and all(v == 0 for v in lag):
                break
            time.sleep(0.3)
    finally:
        stop.set()
        thread.join(30)
        server.shutdown()
    assert appended == len(messages), samples.get("bo_ingest_messages")
    assert lag and all(v == 0 for v in lag), samples.get("bo_ingest_consumer_lag")
    for topic in topics:
        sent = [m for m in messages if m.topic == topic]
        assert value(samples, "bo_ingest_messages", "bo_ingest_messages_total", topic=topic) == len(sent)
        assert value(samples, "bo_ingest_bytes", "bo_ingest_bytes_total", topic=topic) == sum(
            len(m.value) for m in sent)
    assert {s.labels["partition"] for s in samples["bo_ingest_consumer_lag"]} <= {"0", "1", "2", "3"}
    assert value(samples, "bo_ingest_rebalances", "bo_ingest_rebalances_total", kind="assigned") >= 1
    assert value(samples, "bo_ingest_batch_commit_seconds", "bo_ingest_batch_commit_seconds_count") >= 1
    assert value(samples, "bo_ingest_seconds_since_last_append", "bo_ingest_seconds_since_last_append") < 60


def test_no_label_holds_an_id(client: falcon.testing.TestClient, projected: str) -> None:
    """Label values come from the code and the configuration, never from the data: a thousand
    distinct ids asked for add no series."""
    def series() -> tuple[int, set[str]]:
        text = client.simulate_get("/metrics", headers={"Accept": "text/plain"}).text
        samples = [s for family in text_string_to_metric_families(text) for s in family.samples]
        return len(samples), {v for s in samples for v in s.labels.values()}

    for n in range(20):  # every route of the API seen at least once, with each kind of answer
        client.simulate_get(f"/admin/tx/warm-{n}")
        client.simulate_get(f"/admin/payment-orders/warm-{n}")
        client.simulate_get(f"/admin/wallets/warm-{n}/tx")
    before, _ = series()
    for n in range(1000):
        client.simulate_get(f"/admin/tx/id-{n}")
        client.simulate_get(f"/admin/payment-orders/id-{n}/history")
        client.simulate_get(f"/admin/wallets/id-{n}/tx")
        client.simulate_get(f"/unknown/id-{n}")
    after, values = series()
    assert after - before <= 60, "a series per id"  # the history route's and unmatched's new series only
    ids = set(r["entity_id"] for r in rows(projected, "SELECT DISTINCT entity_id FROM bo.event_log"
                                                      " WHERE entity_id IS NOT NULL"))
    assert not [v for v in values if v in ids or "id-" in v or "warm-" in v]


def test_a_counted_histogram_adds_each_group_with_its_count() -> None:
    from telemetry.metrics import CountedHistogram

    histogram = CountedHistogram("bo_test_seconds", "test", (1.0, 5.0), ["projector"])
    histogram.observe(0.5, 10, ["a"])
    histogram.observe(5.0, 2, ["a"])  # on a bound: counted at or under it
    histogram.observe(7.0, 1, ["a"])
    registry: CollectorRegistry = registry_of(histogram)
    samples = {(s.name, s.labels.get("le")): s.value for s in next(iter(registry.collect())).samples}
    assert samples[("bo_test_seconds_bucket", "1.0")] == 10
    assert samples[("bo_test_seconds_bucket", "5.0")] == 12
    assert samples[("bo_test_seconds_bucket", "+Inf")] == 13
    assert samples[("bo_test_seconds_count", None)] == 13
    assert samples[("bo_test_seconds_sum", None)] == pytest.approx(0.5 * 10 + 5.0 * 2 + 7.0)
