"""API benchmark: bo's API under gunicorn (2 sync workers) over 1,000,000 ledger entries, 64 clients.

One command, no arguments: `python bench/api.py`. It starts an embedded PostgreSQL, fills it
in SQL with 1,000,000 log rows, ledger entries (1,000 wallets), 500,000 orders and pairs, and
ANALYZEs. Then it serves the same data six ways (bench/api_server.py), one after the other,
and runs a closed-loop load of 64 concurrent connections against each:

1. `bare`: a bare Falcon + psycopg_pool look-up of the same statement: the ceiling;
2. `open`: bo's API without authentication and without the audit trail;
3. `authenticated`: with bearer tokens verified (a development token), no audit trail;
4. `unobserved`: tokens and the audit row, without request metrics and tracing;
5. `production`: as `bo serve` runs it by default: request metrics on, tracing off;
6. `observed`: with tracing on too (OTLP to a sink that discards, bench/observing.py: the
   exporter does all its work) and the master's /metrics scraped every second.

The six run side by side (idle but for the one under load). Each gets a 5 s warm-up, then
`GET /admin/tx/{tx_id}` on random ids, twice, in the order A B C D E F F E D C B A so that the
machine's drift weighs on all alike: 5 s from 2 connections (one request at a time per
worker: the latency a part adds to each request) and 10 s from 64 (the throughput it
costs). `production` then also gets a mix of look-ups for 30 s:
60 % transactions, 20 % wallet pages (limit 20), 15 % payment orders with their legs, 5 %
transaction histories. The cost of authentication, of the audit trail, of the metrics and
of tracing are the differences between neighbouring variants, measured in this one run; the
cost of instrumentation is `unobserved` against `observed` (issue 12: within 5 %). At 64 connections a
closed loop is saturated, so its p95 is mostly queueing (64 / throughput): the 2-connection
p95 is what a part adds to one request.

The load generator is wrk (`apt-get install wrk`), on the same 2 cores as the server. It
prints requests/s, p50/p95/p99 and errors (non-2xx and socket errors); the last line is the
headline figure and its ratio to the bare look-up. Every server it starts is stopped, and its
temporary data removed, on success, on failure and on Ctrl-C.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from bench.observing import otlp_sink, scraping  # noqa: E402
from bench.server import bench_database  # noqa: E402
from bo.dev_issuer import DevIssuer  # noqa: E402
from bo.embedded import app_role_url  # noqa: E402
from bo.migrate import upgrade  # noqa: E402

ENTRIES = 1_000_000
SECONDS = 10  # twice per variant
WARM_UP_S = 5
UNLOADED_SECONDS = 5  # twice per variant
MIX_SECONDS = 30
CLIENTS = 64
VARIANTS = ("bare", "open", "authenticated", "unobserved", "production", "observed")

FILL = [
    f"""INSERT INTO bo.event_log (position, source, topic, "partition", "offset", value_size, ingested_at, event_id,
                                event_type, entity_id, raw_value, row_hash)
        SELECT g, 'kafka', 'bo.ledger-entries.v1', g % 4, g, 120, now(), 'ev-' || g, 'LedgerEntryUpserted',
               'tx-' || g,
               convert_to('{{"event_id": "ev-' || g || '", "event_type": "LedgerEntryUpserted", "payload": '
                          || '{{"tx_id": "tx-' || g || '", "amount": "' || g || '.00"}}}}', 'UTF8'),
               '\\x00'
          FROM generate_series(1, {ENTRIES}) g""",
    f"""INSERT INTO bo.ledger_entries_v1 (tx_id, wallet_id, entry_type, amount, currency, status, status_group,
                                         related_id, related_type, booked_at, event_id, ingested_at, position,
                                         projector_version)
        SELECT 'tx-' || g, 'w-' || (g % 1000), CASE WHEN g % 2 = 0 THEN 'DEBIT' ELSE 'CREDIT' END,
               (g || '.00')::numeric, 'KRW', 'POSTED', 'SUCCESS', 'ord-' || (g / 2), 'PAYMENT_ORDER',
               now() - g * interval '1 second', 'ev-' || g, now(), g, 1
          FROM generate_series(1, {ENTRIES}) g""",
    f"""INSERT INTO bo.payment_orders_v1 (order_id, wallet_id, amount, currency, status, status_group, event_id,
                                         ingested_at, position, projector_version, payer_name_masked)
        SELECT 'ord-' || g, 'w-' || (g % 1000), g, 'KRW', 'PAID', 'SUCCESS', 'ev-' || g, now(), g, 1, 'K***'
          FROM generate_series(1, {ENTRIES // 2}) g""",
    f"""INSERT INTO bo.payment_ledger_pairs_v1 (order_id, order_present, debit_tx_id, credit_tx_id, pairing_status,
                                               missing, first_seen_at, position, projector_version)
        SELECT 'ord-' || g, true, 'tx-' || (2 * g), 'tx-' || (2 * g + 1), 'COMPLETE', '{{}}', now(), g, 1
          FROM generate_series(1, {ENTRIES // 2}) g""",
    f"""INSERT INTO bo.projection_tracking (application_name, notification_id)
        SELECT name || ':v1', {ENTRIES} FROM bo.projectors""",
    "ANALYZE",
    "CHECKPOINT",  # the fill's dirty pages are written now, not during the measurement
]

TX_ONLY = f"""
math.randomseed(os.time())
request = function()
  return wrk.format(nil, "/admin/tx/tx-" .. math.random(1, {ENTRIES}))
end
"""

MIX = f"""
math.randomseed(os.time())
request = function()
  local r = math.random(1, 100)
  if r <= 60 then
    return wrk.format(nil, "/admin/tx/tx-" .. math.random(1, {ENTRIES}))
  elseif r <= 80 then
    return wrk.format(nil, "/admin/wallets/w-" .. math.random(0, 999) .. "/tx?limit=20")
  elseif r <= 95 then
    return wrk.format(nil, "/admin/payment-orders/ord-" .. math.random(1, {ENTRIES // 2}))
  else
    return wrk.format(nil, "/admin/tx/tx-" .. math.random(1, {ENTRIES}) .. "/history")
  end
end
"""

REPORT = """
done = function(summary, latency, requests)
  io.write(string.format("RESULT requests=%d seconds=%.2f non2xx=%d errors=%d p50=%.2f p95=%.2f p99=%.2f\\n",
    summary.requests, summary.duration / 1e6, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000))
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_wrk(base: str, script: str, label: str, workdir: Path, token: str, seconds: int,
            clients: int = CLIENTS) -> dict[str, float]:
    path = workdir / (re.sub(r"[^A-Za-z0-9]+", "-", label).strip("-") + ".lua")
    path.write_text(script + REPORT)
    out = subprocess.run(["wrk", "-t", "2", "-c", str(clients), "-d", f"{seconds}s", "--timeout", "5s",
                          "-H", f"Authorization: Bearer {token}", "-s", str(path), base],
                         capture_output=True, text=True, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("RESULT"))
    figures = {k: float(v) for k, v in re.findall(r"(\w+)=([0-9.]+)", line)}
    figures["rps"] = figures["requests"] / figures["seconds"]
    print(f"{label}: {figures['rps']:,.0f} requests/s, p50 {figures['p50']:.1f} ms, p95 {figures['p95']:.1f} ms,"
          f" p99 {figures['p99']:.1f} ms, non-2xx {int(figures['non2xx'])}, socket errors {int(figures['errors'])}",
          flush=True)
    return figures


@contextmanager
def server(variant: str, env: dict[str, str], token: str, metrics_port: int | None = None) -> Iterator[str]:
    """bench/api_server.py VARIANT on a free port, answering; stopped on the way out."""
    port = free_port()
    extra = [str(metrics_port)] if metrics_port is not None else []
    process = subprocess.Popen([sys.executable, str(ROOT / "bench" / "api_server.py"), variant, f"127.0.0.1:{port}",
                                *extra], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise SystemExit(f"the {variant} server exited with {process.returncode}")
            try:
                request = urllib.request.Request(base + "/admin/tx/tx-1", headers={"Authorization": f"Bearer {token}"})
                with urllib.request.urlopen(request, timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def together(halves: list[dict[str, float]]) -> dict[str, float]:
    """Two runs as one: their requests over their time; each percentile the mean of the two."""
    requests, seconds = sum(h["requests"] for h in halves), sum(h["seconds"] for h in halves)
    merged = {key: sum(h[key] for h in halves) / len(halves) for key in ("p50", "p95", "p99")}
    return {**merged, "requests": requests, "seconds": seconds, "rps": requests / seconds,
            "non2xx": sum(h["non2xx"] for h in halves), "errors": sum(h["errors"] for h in halves)}


def per_request_ms(rps: float) -> float:
    """Wall time per answered request (the inverse of throughput): what each part adds to it."""
    return 1000.0 / rps


def main() -> None:
    if shutil.which("wrk") is None:
        raise SystemExit("bench/api.py needs wrk: apt-get install wrk")
    with bench_database("bo-bench-api-") as (home, admin):
        measure(home, admin)


def measure(home: Path, admin: str) -> None:
    upgrade(admin)
    started = time.monotonic()
    with psycopg.connect(admin, autocommit=True) as conn:
        for statement in FILL:
            conn.execute(statement)
    print(f"filled {ENTRIES:,} ledger entries in {time.monotonic() - started:.0f} s", flush=True)
    env = {**os.environ, "BO_DATABASE_URL": app_role_url(admin), "BO_LOG_LEVEL": "WARNING", "BO_HOME": str(home)}
    token = DevIssuer(home).token(["ADMIN_READ", "ADMIN_AUDIT"], subject="bench", ttl_s=3600)
    with ExitStack() as servers:
        endpoint, sink = servers.enter_context(otlp_sink())
        observed_env = {**env, "OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
                        "OTEL_SERVICE_NAME": "bo-api-bench"}
        metrics_port = free_port()
        bases = {variant: servers.enter_context(
                     server(variant, observed_env, token, metrics_port) if variant == "observed"
                     else server(variant, env, token))
                 for variant in VARIANTS}
        scrapes = servers.enter_context(scraping(f"http://127.0.0.1:{metrics_port}/metrics"))
        for variant, base in bases.items():
            run_wrk(base, TX_ONLY, f"{variant}: warm-up", home, token, WARM_UP_S)
        # Each variant twice, in the order A B C D D C B A: the machine's drift over the run
        # weighs on every variant alike, and the figures are the two halves together.
        runs: dict[str, list[dict[str, float]]] = {v: [] for v in VARIANTS}
        quiet: dict[str, list[dict[str, float]]] = {v: [] for v in VARIANTS}
        for variant in [*VARIANTS, *reversed(VARIANTS)]:
            quiet[variant].append(run_wrk(bases[variant], TX_ONLY, f"{variant}: GET /admin/tx/{{tx_id}}, 2 connections",
                                          home, token, UNLOADED_SECONDS, clients=2))
            runs[variant].append(run_wrk(bases[variant], TX_ONLY, f"{variant}: GET /admin/tx/{{tx_id}}", home, token,
                                         SECONDS))
        mix = run_wrk(bases["production"], MIX, "production: mix (60% tx, 20% wallet pages, 15% orders, 5% histories)",
                      home, token, MIX_SECONDS)
    tx = {variant: together(figures) for variant, figures in runs.items()}
    unloaded = {variant: together(figures) for variant, figures in quiet.items()}
    errors = int(sum(f["non2xx"] + f["errors"] for f in [*tx.values(), *unloaded.values(), mix]))
    print(f"errors: {errors}")
    print(f"observed: {scrapes.count:,} scrapes of the master's /metrics; {sink.requests:,} OTLP exports"
          f" ({sink.bytes / 1e6:,.1f} MB) received by the sink")
    for part, without, with_ in (("bo's layers (routing, middleware, data lag)", "bare", "open"),
                                 ("authentication", "open", "authenticated"),
                                 ("the audit trail", "authenticated", "unobserved"),
                                 ("request metrics", "unobserved", "production"),
                                 ("tracing (and a scrape a second)", "production", "observed"),
                                 ("instrumentation: metrics and tracing together", "unobserved", "observed")):
        a, b, quiet_a, quiet_b = tx[without], tx[with_], unloaded[without], unloaded[with_]
        print(f"cost of {part}: p95 {quiet_b['p95'] - quiet_a['p95']:+.1f} ms with 2 connections"
              f" ({quiet_a['p95']:.1f} -> {quiet_b['p95']:.1f} ms); at {CLIENTS} connections"
              f" {a['rps']:,.0f} -> {b['rps']:,.0f} requests/s ({b['rps'] / a['rps'] - 1:+.0%}),"
              f" {per_request_ms(b['rps']) - per_request_ms(a['rps']):+.2f} ms per request,"
              f" p95 {a['p95']:.1f} -> {b['p95']:.1f} ms")
    prod, off, on = tx["production"], tx["unobserved"], tx["observed"]
    print(f"instrumentation: {on['rps']:,.0f} requests/s with metrics and tracing on, {off['rps']:,.0f} with both"
          f" off ({on['rps'] / off['rps'] - 1:+.1%}; p95 {off['p95']:.1f} -> {on['p95']:.1f} ms at {CLIENTS}"
          f" connections, {unloaded['unobserved']['p95']:.1f} -> {unloaded['observed']['p95']:.1f} ms at 2)")
    print(f"api: {prod['rps']:,.0f} requests/s for GET /admin/tx/{{tx_id}} at p95 {prod['p95']:.1f} ms, authenticated"
          f" and audited; mix p99 {mix['p99']:.1f} ms ({prod['rps'] / tx['bare']['rps']:.2f} of the bare look-up"
          " in this run)")



if __name__ == "__main__":
    main()
