"""OpenTelemetry tracing for every bo process, configured by the standard `OTEL_*` variables.

- `OTEL_TRACES_EXPORTER`: `none` (the default, and what the tests run with), `console` (spans
  as JSON on stdout, for local use), `otlp` (OTLP over HTTP, to `OTEL_EXPORTER_OTLP_ENDPOINT`
  or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, with the other `OTEL_EXPORTER_OTLP_*` settings) or
  `azure_monitor` (Application Insights, at `APPLICATIONINSIGHTS_CONNECTION_STRING`: deploy/azure).
- `OTEL_SDK_DISABLED=true` turns it off whatever the exporter says.
- `OTEL_SERVICE_NAME` names the service (default `bo-<process>`); `OTEL_RESOURCE_ATTRIBUTES` adds to it.
- `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG` choose the sampler. With the sampler
  unset, a span whose parent is sampled is sampled (parent-based); of the API's other
  requests, `OTEL_TRACES_SAMPLER_ARG` if given, else 1 % (a sampled request's spans cost
  about a millisecond of CPU in the Python SDK; decisions §70); every ingest and projector
  batch (a few a second).

Spans are exported by the SDK's batch processor: a span's end only puts it on a bounded
queue, a background thread exports, and a full queue drops spans rather than wait. So no
request, ingest batch or projector batch ever waits for the exporter.

With tracing on, psycopg's queries get spans of their own (opentelemetry-instrumentation-
psycopg), and `bo serve` traces each request (opentelemetry-instrumentation-falcon). A batch
links to the W3C trace context each of its messages carried (`traceparent`, kept on the log
row): `links` below.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Link, SpanContext, TraceFlags

EXPORTER_ENV = "OTEL_TRACES_EXPORTER"
EXPORTERS = ("none", "console", "otlp", "azure_monitor")
APP_INSIGHTS_ENV = "APPLICATIONINSIGHTS_CONNECTION_STRING"
# A batch links to every sampled message's trace: more links than the SDK's default of 128.
DEFAULT_MAX_LINKS = 10_000
# The share of root spans sampled when OTEL_TRACES_SAMPLER is unset, by process.
DEFAULT_RATIOS = {"api": 0.01}


class TracingConfigurationError(ValueError):
    """An OTEL_* variable bo cannot follow: the command stops at start, naming it."""


def exporter_name() -> str:
    """The exporter the environment asks for (`none` when tracing is off)."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return "none"
    name = os.environ.get(EXPORTER_ENV, "none").strip().lower() or "none"
    if name not in EXPORTERS:
        raise TracingConfigurationError(
            f"{EXPORTER_ENV}={name!r}: bo exports traces with one of {', '.join(EXPORTERS)}")
    if name == "azure_monitor" and not os.environ.get(APP_INSIGHTS_ENV, "").strip():
        raise TracingConfigurationError(f"{EXPORTER_ENV}=azure_monitor needs {APP_INSIGHTS_ENV}")
    return name


def configure_tracing(process: str) -> bool:
    """Install the SDK's tracer provider for this process as the environment asks; answer
    whether tracing is on. Call it once per process, after any fork (a gunicorn worker)."""
    name = exporter_name()
    ratio = sampled_ratio(process)  # a bad ratio is refused even while tracing is off: a setting waiting to break
    if name == "none":
        return False
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import SpanLimits, TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
    from opentelemetry.sdk.trace.sampling import ParentBased, Sampler, TraceIdRatioBased

    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", f"bo-{process}")})
    max_links = int(os.environ.get("OTEL_SPAN_LINK_COUNT_LIMIT", DEFAULT_MAX_LINKS))
    # None: the SDK builds the sampler OTEL_TRACES_SAMPLER names.
    sampler: Sampler | None = None if ratio is None else ParentBased(TraceIdRatioBased(ratio))
    provider = TracerProvider(resource=resource, span_limits=SpanLimits(max_links=max_links), sampler=sampler)
    exporter: SpanExporter
    if name == "console":
        exporter = ConsoleSpanExporter()
    elif name == "azure_monitor":
        from azure.monitor.opentelemetry.exporter import AzureMonitorTraceExporter

        # Spans the service could not take yet wait on disk (under /tmp) and are sent again.
        exporter = AzureMonitorTraceExporter(connection_string=os.environ[APP_INSIGHTS_ENV])
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    PsycopgInstrumentor().instrument(tracer_provider=provider, skip_dep_check=True)
    return True


def sampled_ratio(process: str) -> float | None:
    """The share of root spans bo's default sampler keeps in `process`; None when
    OTEL_TRACES_SAMPLER names a sampler (the SDK's own, with its own argument).

    The API's requests are sampled at OTEL_TRACES_SAMPLER_ARG when given, else at 1 %; an
    argument that is no ratio from 0 to 1 is refused, naming the variable. Every ingest and
    projector batch is sampled (a few a second): the argument is not theirs.
    """
    if os.environ.get("OTEL_TRACES_SAMPLER", "").strip():
        return None
    if process not in DEFAULT_RATIOS:
        return 1.0
    given = os.environ.get("OTEL_TRACES_SAMPLER_ARG", "").strip()
    if not given:
        return DEFAULT_RATIOS[process]
    try:
        ratio = float(given)
    except ValueError:
        ratio = -1.0
    if not 0.0 <= ratio <= 1.0:
        raise TracingConfigurationError(
            f"OTEL_TRACES_SAMPLER_ARG={given!r}: a ratio of root spans to sample, from 0 to 1")
    return ratio


def instrument_falcon() -> None:
    """Trace every request of the falcon apps made from now on in this process (but scrapes and
    probes, unless OTEL_PYTHON_FALCON_EXCLUDED_URLS says otherwise)."""
    from opentelemetry.instrumentation.falcon import FalconInstrumentor

    os.environ.setdefault("OTEL_PYTHON_FALCON_EXCLUDED_URLS", "/metrics,/healthz,/readyz")
    FalconInstrumentor().instrument()


def links(traceparents: Iterable[str | None]) -> list[Link]:
    """Span links to the sampled traces named by W3C `traceparent` values.

    A trace its producer did not sample was recorded nowhere, and a link to it leads nowhere;
    each link costs about 25 µs in the SDK (parsing, the span, the export's encoding). So the
    cost follows the producers' sampling. Malformed values are left out too.
    """
    found = []
    for value in traceparents:
        if value and value[-1] in SAMPLED_LAST_DIGITS:  # the sampled bit of the flags, before parsing
            context = parse_traceparent(value)
            if context is not None:
                found.append(Link(context))
    return found


SAMPLED_LAST_DIGITS = frozenset("13579bdfBDF")  # trace-flags' last hex digit is odd: sampled


def parse_traceparent(value: str | None) -> SpanContext | None:
    """`00-<32 hex trace id>-<16 hex span id>-<2 hex flags>` as a remote span context, else None."""
    if not value or len(value) != 55 or value[2] != "-" or value[35] != "-" or value[52] != "-":
        return None
    if value[:2] == "ff":
        return None
    try:
        trace_id, span_id, flags = int(value[3:35], 16), int(value[36:52], 16), int(value[53:], 16)
    except ValueError:
        return None
    if not trace_id or not span_id:  # all zeros: invalid (W3C)
        return None
    return SpanContext(trace_id, span_id, is_remote=True, trace_flags=TraceFlags(flags))


def quiet_if_unsampled() -> Callable[[], None] | None:
    """When the current span is valid but not recorded (a request the sampler left out),
    suppress the instrumentations below it (psycopg's spans) until the answer is given; answer
    the function that lifts the suppression, else None.

    An unsampled request's query spans would be dropped anyway, but the instrumentation still
    composes each statement's text to name its span and starts and ends a span around it: a
    half of what tracing cost an unsampled request (docs/performance.md, issue 12).
    """
    context = trace.get_current_span()
    if context.is_recording() or not context.get_span_context().is_valid:
        return None
    token = otel_context.attach(otel_context.set_value(otel_context._SUPPRESS_INSTRUMENTATION_KEY, True))
    return lambda: otel_context.detach(token)


def current_trace_id() -> str | None:
    """The current span's trace id (32 hex digits), when a span is recording here."""
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None
