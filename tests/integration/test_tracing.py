"""Traces: a message's W3C trace context crosses Kafka into the spans of the batches that append
and project it; an API request's span is the caller's trace, and its id reaches the audit row.

Spans go to the SDK's in-memory exporter. The modules' tracers are swapped for this test's
provider (tracing stays off, process-wide, for every other test).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
from collections.abc import Iterator

import falcon.testing
import pytest
from opentelemetry.instrumentation.falcon import FalconInstrumentor
from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult

import eventstore.ingest.consumer as consumer_module
import projections.runner as runner_module
from bo.embedded import DevBroker
from bo.generate import StreamShape, generate
from bo.logs import JsonFormatter
from bo.publish import publish
from eventstore.db import open_pool
from eventstore.ingest.consumer import IngestConfig, IngestConsumer
from telemetry.tracing import links, parse_traceparent
from tests.conftest import random_ref
from tests.integration.helpers import api_app, bearer, rows, runner

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(span_limits=SpanLimits(max_links=10_000))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(consumer_module, "TRACER", provider.get_tracer("test"))
    monkeypatch.setattr(runner_module, "TRACER", provider.get_tracer("test"))
    yield provider, exporter
    provider.shutdown()


def linked_trace_ids(span: object) -> set[str]:
    return {format(link.context.trace_id, "032x") for link in span.links}  # type: ignore[attr-defined]


def test_a_messages_trace_links_the_batches_that_append_and_project_it(
        spans: tuple[TracerProvider, InMemorySpanExporter], database_url: str, broker: DevBroker,
        topics: tuple[str, str]) -> None:
    _, exporter = spans
    messages = list(generate(StreamShape(payments=3, seed=11), *topics))
    traced = [dataclasses.replace(messages[0], headers=[*messages[0].headers, ("traceparent", TRACEPARENT)])]
    publish(broker.bootstrap, iter(traced + messages[1:]))
    consumer = IngestConsumer(IngestConfig(database_url, broker.bootstrap, random_ref("group"), topics,
                                           session_timeout_ms=6000))
    assert consumer.run(threading.Event(), idle_exit_s=2.0).appended == len(messages)
    logged = rows(database_url, "SELECT traceparent FROM bo.event_log WHERE traceparent = %(t)s", {"t": TRACEPARENT})
    assert len(logged) == 1  # the header is kept on the log row

    ingest = [s for s in exporter.get_finished_spans() if s.name == "ingest batch"]
    assert ingest and TRACE_ID in set().union(*(linked_trace_ids(s) for s in ingest))
    exporter.clear()

    runner(database_url).catch_up()
    project = [s for s in exporter.get_finished_spans() if s.name == "project batch"]
    assert project and TRACE_ID in set().union(*(linked_trace_ids(s) for s in project))
    # The batch's queries are its children when psycopg is instrumented; here, the span itself
    # names the range it projected.
    assert all(s.attributes and "bo.log.up_to" in s.attributes for s in project)


def test_log_lines_inside_a_batch_carry_its_trace_id(spans: tuple[TracerProvider, InMemorySpanExporter]) -> None:
    provider, _ = spans
    record = logging.makeLogRecord({"msg": "batch appended", "levelname": "INFO", "name": "t"})
    with provider.get_tracer("test").start_as_current_span("ingest batch") as span:
        line = json.loads(JsonFormatter().format(record))
    assert line["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert "trace_id" not in json.loads(JsonFormatter().format(record))  # no span: no trace id


def test_a_request_continues_the_callers_trace_and_the_audit_row_names_it(
        spans: tuple[TracerProvider, InMemorySpanExporter], database_url: str) -> None:
    provider, exporter = spans
    FalconInstrumentor().instrument(tracer_provider=provider)
    PsycopgInstrumentor().instrument(tracer_provider=provider, skip_dep_check=True)
    pool = open_pool(database_url)  # its connections are made instrumented
    try:
        client = falcon.testing.TestClient(api_app(pool))
        answer = client.simulate_get("/admin/tx/nobody-traced", headers={
            **bearer("ADMIN_READ"), "traceparent": TRACEPARENT, "X-Correlation-Id": "corr-traced-1"})
    finally:
        FalconInstrumentor().uninstrument()
        PsycopgInstrumentor().uninstrument()
        pool.close()
    assert answer.status_code == 404 and answer.headers["X-Correlation-ID"] == "corr-traced-1"
    requests = [s for s in exporter.get_finished_spans() if s.kind.name == "SERVER"]
    assert len(requests) == 1
    context = requests[0].get_span_context()
    assert format(context.trace_id, "032x") == TRACE_ID  # the caller's trace, continued
    parent = parse_traceparent(TRACEPARENT)
    assert parent is not None and requests[0].parent is not None and requests[0].parent.span_id == parent.span_id
    queries = [s for s in exporter.get_finished_spans() if s.kind.name == "CLIENT"]
    assert queries, "the request's queries have spans"
    assert all(q.parent is not None and q.parent.span_id == context.span_id for q in queries)
    assert all(format(q.get_span_context().trace_id, "032x") == TRACE_ID for q in queries)
    audited = rows(database_url, "SELECT trace_id, correlation_id FROM bo.audit_log WHERE correlation_id = %(c)s",
                   {"c": "corr-traced-1"})
    assert audited == [{"trace_id": TRACE_ID, "correlation_id": "corr-traced-1"}]


class Dropping(Sampler):
    """Samples nothing, and remembers the name of every span it was asked about."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def should_sample(self, parent_context: object, trace_id: int, name: str, *args: object,
                      **kwargs: object) -> SamplingResult:
        self.asked.append(name)
        return SamplingResult(Decision.DROP)

    def get_description(self) -> str:
        return "Dropping"


def test_an_unsampled_request_starts_no_query_spans_but_keeps_its_trace_id(database_url: str) -> None:
    sampler = Dropping()
    provider = TracerProvider(sampler=sampler)
    FalconInstrumentor().instrument(tracer_provider=provider)
    PsycopgInstrumentor().instrument(tracer_provider=provider, skip_dep_check=True)
    pool = open_pool(database_url)  # its connections are made instrumented
    try:
        pool.wait()
        client = falcon.testing.TestClient(api_app(pool))
        before = len(sampler.asked)
        answer = client.simulate_get("/admin/tx/nobody-unsampled", headers={
            **bearer("ADMIN_READ"), "X-Correlation-Id": "corr-unsampled-1"})
        during = sampler.asked[before:]
        with pool.connection() as conn:  # instrumentation is back on once the answer is given
            conn.execute("SELECT 1")
        after = sampler.asked[before + len(during):]
    finally:
        FalconInstrumentor().uninstrument()
        PsycopgInstrumentor().uninstrument()
        pool.close()
        provider.shutdown()
    assert answer.status_code == 404
    # Asked once for the request, never for its look-up or its audit row; then for the query after it.
    assert len(during) == 1 and "/admin/tx/" in during[0], during
    assert after == ["SELECT"], after
    audited = rows(database_url, "SELECT trace_id FROM bo.audit_log WHERE correlation_id = %(c)s",
                   {"c": "corr-unsampled-1"})
    assert len(audited) == 1 and audited[0]["trace_id"] and len(audited[0]["trace_id"]) == 32


def test_only_sampled_traces_are_linked() -> None:
    sampled, unsampled = TRACEPARENT, TRACEPARENT[:-2] + "00"
    assert [format(link.context.trace_id, "032x") for link in links([sampled, unsampled, None, "junk"])] == [TRACE_ID]


@pytest.mark.parametrize("value", [None, "", "00-xyz", f"00-{'0' * 32}-00f067aa0ba902b7-01",
                                   f"ff-{TRACE_ID}-00f067aa0ba902b7-01", f"00-{TRACE_ID}-{'0' * 16}-01"])
def test_a_malformed_traceparent_links_nothing(value: str | None) -> None:
    assert parse_traceparent(value) is None
