"""Ingest benchmark: messages/s from the development broker into bo.event_log, steady state.

One command, no arguments: `python bench/ingest.py`. It starts an embedded PostgreSQL in a
temporary directory and librdkafka's mock cluster, produces MESSAGES messages of about
400 bytes over 2 topics × 4 partitions (kept under the broker's ~5 MiB per partition),
then runs the real `bo ingest` process (hash chain on, offsets committed with each batch,
connecting as the app's role) until every message is logged.

Reported: the steady-state rate, measured on the database clock between the first and
last batch appended (group join excluded); p50/p95/p99 of the append transaction per
batch (from `bo ingest`'s own stop line); the ingest process's peak RSS (VmHWM). Its
ceiling is measured on the same messages in the same run: a bare consume → COPY → commit
loop (no decoding, no chain, no offsets); the last line gives the ratio. Every message
carries a W3C `traceparent`, as upstream services send it, one in ten sampled. A third run ingests the same
number of messages with tracing on (OTLP to a sink that discards, bench/observing.py) and
the metrics port scraped every second: the cost of instrumentation (issue 12: within 5 %). The embedded server
is stopped and its data removed on success, on failure and on Ctrl-C.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import psycopg
from confluent_kafka import Consumer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.observing import otlp_sink, scraping  # noqa: E402
from bench.server import bench_database  # noqa: E402
from bo.embedded import DevBroker, app_role_url  # noqa: E402
from bo.migrate import upgrade  # noqa: E402
from bo.publish import OutgoingMessage, publish  # noqa: E402

MESSAGES = 80_000
TOPICS = ("bench.ledger-entries", "bench.payment-orders")


def message(n: int, topics: tuple[str, str] = TOPICS) -> OutgoingMessage:
    ledger = n % 2 == 0
    topic = topics[0] if ledger else topics[1]
    event_type = "LedgerEntryUpserted" if ledger else "PaymentOrderUpserted"
    key = f"tx-{n}" if ledger else f"ord-{n}"
    payload = {"tx_id" if ledger else "order_id": key, "wallet_id": f"w-{n % 997}",
               "entry_type": "DEBIT", "amount": f"{n % 100000}.{n % 100:02d}", "currency": "KRW",
               "status": "POSTED", "related_id": f"ord-{n // 3}", "version": 1 + n % 3,
               "updated_at": "2026-02-05T09:00:03Z", "created_at": "2026-02-05T09:00:00Z"}
    value = json.dumps({"event_id": f"bench-{n}", "event_type": event_type, "schema_version": 1,
                        "occurred_at": "2026-02-05T09:00:03Z", "payload": payload})
    # Each message carries its producer's trace context, as upstream services send it; one in
    # ten sampled (a common head-sampling rate), whose traces the ingest batch links to.
    traceparent = f"00-{n + 1:032x}-{n + 1:016x}-{'01' if n % 10 == 0 else '00'}"
    return OutgoingMessage(topic, key.encode(), value.encode(),
                           [("x-correlation-id", f"c-{n}".encode()), ("traceparent", traceparent.encode())])


def wait_logged(url: str, expected: int, timeout_s: float = 600) -> None:
    deadline = time.monotonic() + timeout_s
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute("SELECT count(*) FROM bo.event_log").fetchone()
            if row and row[0] >= expected:
                return
            time.sleep(0.2)
    raise TimeoutError("ingest did not finish")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class Result:
    processes: int
    rate: float
    seconds: float
    batch_ms: dict[str, float]
    peak_rss_mb: float


def run(home: Path, server: str, broker: DevBroker, processes: int, observed: Observed | None = None,
        tag: str = "") -> Result:
    """Ingest MESSAGES fresh messages with `processes` `bo ingest` processes in one group; with
    `observed`, tracing on (OTLP to its sink) and the metrics port scraped every second."""
    name = f"{processes}{'_observed' if observed else ''}{tag}"
    admin = server
    database = f"bench_{name}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {database}")
    admin = psycopg.conninfo.make_conninfo(admin, dbname=database)
    upgrade(admin)
    url = app_role_url(admin)
    topics = (f"{TOPICS[0]}-{name}", f"{TOPICS[1]}-{name}")
    publish(broker.bootstrap, (message(n, topics) for n in range(MESSAGES)), total=MESSAGES, label="produce")
    env = {**os.environ, "BO_DATABASE_URL": url, "BO_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
           "BO_TOPIC_LEDGER": topics[0], "BO_TOPIC_ORDERS": topics[1], "BO_KAFKA_GROUP_ID": f"bench-{name}",
           "BO_HOME": str(home), "BO_KAFKA_SESSION_TIMEOUT_MS": "6000"}
    args = [sys.executable, "-m", "bo", "ingest"]
    if observed:
        env.update({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": observed.endpoint,
                    "OTEL_SERVICE_NAME": "bo-ingest-bench"})
        args += ["--metrics-port", str(observed.metrics_port)]
    ingests = [subprocess.Popen(args, env=env, stderr=subprocess.PIPE, text=True) for _ in range(processes)]
    with scraping(f"http://127.0.0.1:{observed.metrics_port}/metrics") if observed else nullcontext():
        wait_logged(url, MESSAGES)
    rss = max(peak_rss_mb(p.pid) for p in ingests)
    stop_lines = []
    for p in ingests:
        p.send_signal(signal.SIGTERM)
        _, stderr = p.communicate(timeout=30)
        stop_lines.append(next(json.loads(line) for line in stderr.splitlines() if '"ingest stopped"' in line))
    with psycopg.connect(url) as conn:
        row = conn.execute("""
            SELECT count(*), extract(epoch FROM max(ingested_at) - min(ingested_at)),
                   (SELECT count(*) FROM bo.event_log
                     WHERE ingested_at = (SELECT min(ingested_at) FROM bo.event_log))
              FROM bo.event_log""").fetchone()
    assert row is not None
    rows, seconds, first_batch = int(row[0]), float(row[1]), int(row[2])
    # The first batch's rows were stamped at its start; the rate counts the rows after it.
    rate = (rows - first_batch) / seconds if seconds > 0 else float("nan")
    busiest = max(stop_lines, key=lambda line: line["batches"])
    batch_ms = {k: busiest[f"batch_ms_{k}"] for k in ("p50", "p95", "p99")}
    label = f"{processes} process(es){', observed' if observed else ''}"
    print(f"{label}: {rows} rows over {seconds:.2f} s; append transaction p50 {batch_ms['p50']} ms, "
          f"p95 {batch_ms['p95']} ms, p99 {batch_ms['p99']} ms; peak RSS {rss:.0f} MB; {rate:.0f} messages/s",
          flush=True)
    return Result(processes, rate, seconds, batch_ms, rss)


def combined(results: list[Result]) -> float:
    """Runs as one: their messages over their time."""
    return sum(r.rate * r.seconds for r in results) / sum(r.seconds for r in results)


@dataclass
class Observed:
    endpoint: str  # the OTLP sink
    metrics_port: int


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bookkeeping_us(batch: int = 2000) -> float:
    """What counting a batch in the ingest metrics costs (µs), measured here on bench messages:
    the part of the metrics every run pays, served or not."""
    from eventstore.ingest.decode import decode
    from eventstore.ingest.metrics import IngestMetrics
    from eventstore.records import KafkaCoordinates

    records = [decode(KafkaCoordinates(m.topic, 0, n, None), m.key, m.value, m.headers)
               for n, m in ((n, message(n)) for n in range(batch))]
    fresh = list(range(batch))
    metrics = IngestMetrics()
    started = time.perf_counter()
    for _ in range(50):
        metrics.appended(records, fresh, 0.01)
    return (time.perf_counter() - started) / 50 * 1e6


BARE_COPY = 'COPY bench_bare (topic, "partition", "offset", key, value) FROM STDIN'


def bare_loop(server: str, broker: DevBroker, topics: tuple[str, str]) -> float:
    """The ceiling (issue 11): consume the same messages again, COPY each batch's raw bytes and
    coordinates into a scratch table, commit; no decoding, no chain, no offsets. Messages/s."""
    admin = psycopg.conninfo.make_conninfo(server, dbname="bench_1")
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "bench-bare",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False, "fetch.queue.backoff.ms": 10})
    consumer.subscribe(list(topics))
    got, started = 0, 0.0
    try:
        with psycopg.connect(admin) as conn:
            conn.execute('CREATE TABLE bench_bare (topic text, "partition" int, "offset" bigint, key bytea,'
                         " value bytea)")
            conn.commit()
            deadline = time.monotonic() + 300
            while got < MESSAGES and time.monotonic() < deadline:
                batch = [m for m in consumer.consume(2000, timeout=1.0) if m.error() is None]
                if not batch:
                    continue
                started = started or time.monotonic()
                with conn.cursor().copy(BARE_COPY) as copy:
                    for m in batch:
                        copy.write_row((m.topic(), m.partition(), m.offset(), m.key(), m.value()))
                conn.commit()
                got += len(batch)
    finally:
        consumer.close()
    if got < MESSAGES:
        raise TimeoutError(f"the bare loop read {got} of {MESSAGES} messages")
    return got / (time.monotonic() - started)


def main() -> None:
    with bench_database("bo-bench-ingest-") as (home, server):
        broker = DevBroker()
        sizes = [len(message(n, TOPICS).value or b"") for n in range(0, MESSAGES, 1000)]
        print(f"{MESSAGES} messages of ~{sum(sizes) // len(sizes)} bytes over 2 topics x 4 partitions; "
              "hash chain on, offsets committed with each batch", flush=True)
        single = run(home, server, broker, 1)
        bare = bare_loop(server, broker, (f"{TOPICS[0]}-1", f"{TOPICS[1]}-1"))
        print(f"ceiling: a bare consume -> COPY -> commit loop over the same messages: {bare:,.0f} messages/s",
              flush=True)
        # Instrumentation's cost: off, on, on, off (A B B A), so the machine's drift weighs on both alike.
        with otlp_sink() as (endpoint, sink):
            observed = [run(home, server, broker, 1, Observed(endpoint, free_port()), tag=f"_{n}") for n in (1, 2)]
        plain = [single, run(home, server, broker, 1, tag="_2")]
        print(f"observed: {sink.requests:,} OTLP exports ({sink.bytes / 1e6:,.1f} MB) received by the sink;"
              f" counting a batch of 2,000 in the metrics costs {bookkeeping_us():,.0f} µs (paid by every run)",
              flush=True)
        scaled = run(home, server, broker, 2)
        broker.close()
        on, off = combined(observed), combined(plain)
        print(f"instrumentation: {on:,.0f} messages/s with tracing on and metrics served and scraped, {off:,.0f}"
              f" without ({on / off - 1:+.1%}; two runs each, in the order off on on off)")
        print(f"ingest, 2 processes in one group: {scaled.rate:,.0f} messages/s (p95 batch"
              f" {scaled.batch_ms['p95']} ms, peak RSS {scaled.peak_rss_mb:.0f} MB per process)")
        print(f"ingest: {single.rate:,.0f} messages/s, one process (p95 batch {single.batch_ms['p95']} ms, peak RSS"
              f" {single.peak_rss_mb:.0f} MB; {single.rate / bare:.2f} of the bare loop in this run)")


if __name__ == "__main__":
    main()
