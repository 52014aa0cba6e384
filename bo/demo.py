"""`bo demo`: the whole flow on the embedded defaults, from an empty demo database to a served API.

Steps: embedded PostgreSQL (a `bo_demo` database, recreated each run because the
development broker's offsets start again from 0 every time), migrations, the development
broker, ingest and projection in background threads, the shared samples plus a generated
stream published, a wait until the projections have caught up, then the API under
gunicorn and a list of requests to try.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from bo.cli import stop_on_signals
from bo.dev_issuer import AUDIENCE as DEV_AUDIENCE
from bo.dev_issuer import DevIssuer
from bo.embedded import DevBroker, app_role_url, embedded_database_url
from bo.generate import StreamShape, generate
from bo.migrate import upgrade
from bo.progress import Progress
from bo.publish import OutgoingMessage, publish, read_messages, topic_map
from bo.runtime import ingest_consumer, projection_runner
from bo.settings import Settings
from eventstore.db import connect
from eventstore.ingest.metrics import IngestMetrics
from projections.metrics import DatabaseFigures, ProjectorMetrics
from projections.runner import ProjectionRunner
from telemetry.metrics import bound_port, registry_of, serve_metrics

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "messages.jsonl"
DEMO_TOKEN_TTL_S = 12 * 3600
DEMO_DB = "bo_demo"


def run_demo(settings: Settings, *, payments: int, bind: str, once: bool, started: float,
             metrics_port: int = 9100) -> int:
    admin_url = _fresh_demo_database(settings)
    _say(f"database ready (embedded PostgreSQL, database {DEMO_DB})")
    upgrade(admin_url)
    url = app_role_url(admin_url)
    _say("migrations applied; ingest, projection and the API connect as the app's role")
    broker = DevBroker()
    _say(f"development broker on {broker.bootstrap}")
    stop = threading.Event()
    runner, threads, metrics_at = _start_pipeline(settings, url, broker.bootstrap, stop, metrics_port)
    messages = list(_stream(settings, payments))
    publish(broker.bootstrap, iter(messages), total=len(messages), label="publish")
    head = _wait_until_logged(url, len(messages))
    runner.wait_for(head, timeout=600)
    summary = _summary(url)
    server = _start_api(url, bind, settings.log_level)
    try:
        _wait_ready(bind)
        tokens = _tokens(settings)
        _print_summary(summary, bind, started, tokens, metrics_at)
        _check_api(bind, tokens)
        _check_metrics(bind, metrics_at)
        if not once:
            _say("serving; press Ctrl-C to stop")
            interrupt = stop_on_signals()
            while not interrupt.wait(1.0) and server.poll() is None:
                pass
    finally:
        server.terminate()
        server.wait(10)
        stop.set()
        for thread in threads:
            thread.join(10)
        broker.close()
    return 0


def _fresh_demo_database(settings: Settings) -> str:
    base = embedded_database_url(settings.home)
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DEMO_DB)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DEMO_DB)))
    return psycopg.conninfo.make_conninfo(base, dbname=DEMO_DB)


def _start_pipeline(settings: Settings, url: str, bootstrap: str, stop: threading.Event, metrics_port: int
                    ) -> tuple[ProjectionRunner, list[threading.Thread], str]:
    """Ingest and projection in threads of this process, their metrics on one port (their
    names do not overlap), as `bo ingest --metrics-port` and `bo project --metrics-port` serve theirs."""
    ingest_metrics, project_metrics = IngestMetrics(), ProjectorMetrics()
    consumer = ingest_consumer(settings, url, bootstrap, group_id="bo-demo", metrics=ingest_metrics)
    runner, _datastore = projection_runner(settings, url, metrics=project_metrics)
    server = serve_metrics(registry_of(ingest_metrics.registry, project_metrics.registry,
                                       DatabaseFigures(lambda: connect(url))), metrics_port)
    threads = [
        threading.Thread(target=consumer.run, args=(stop,), name="ingest", daemon=True),
        threading.Thread(target=runner.run, args=(stop, url), name="project", daemon=True),
    ]
    for thread in threads:
        thread.start()
    return runner, threads, f"127.0.0.1:{bound_port(server)}"


def _stream(settings: Settings, payments: int) -> Iterator[OutgoingMessage]:
    yield from read_messages(SAMPLES, topic_map(settings.topics))
    yield from generate(StreamShape(payments=payments), settings.topic_ledger, settings.topic_orders)


def _wait_until_logged(url: str, expected: int, timeout_s: float = 600) -> int:
    """Wait until `expected` rows are in the log; return the head position."""
    deadline = time.monotonic() + timeout_s
    with connect(url, autocommit=True) as conn, Progress("ingest", expected) as progress:
        while time.monotonic() < deadline:
            row = conn.execute("SELECT count(*), coalesce(max(position), 0) FROM bo.event_log").fetchone()
            assert row is not None
            logged, head = int(row[0]), int(row[1])
            progress.advance(logged - progress.done)
            if logged >= expected:
                return head
            time.sleep(0.2)
    raise TimeoutError(f"ingest did not log {expected} messages within {timeout_s:.0f}s")


def _summary(url: str) -> dict[str, Any]:
    with connect(url, autocommit=True) as conn:
        def rows(query: str) -> list[tuple[Any, ...]]:
            return conn.execute(query).fetchall()
        return {
            "log": rows("SELECT count(*) FROM bo.event_log")[0][0],
            "ledger_entries": rows("SELECT count(*) FROM bo.ledger_entries")[0][0],
            "payment_orders": rows("SELECT count(*) FROM bo.payment_orders")[0][0],
            "pairs": dict(rows("SELECT pairing_status, count(*) FROM bo.payment_ledger_pairs GROUP BY 1")),
            "dead_letters": dict(rows(
                "SELECT reason, count(*) FROM bo.dead_letters WHERE projector = 'ledger_entries'"
                " OR projector = 'payment_orders' GROUP BY 1")),
        }


def _start_api(url: str, bind: str, log_level: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "BO_DATABASE_URL": url, "BO_LOG_LEVEL": log_level}
    return subprocess.Popen([sys.executable, "-m", "bo", "serve", "--bind", bind, "--workers", "2"],
                            env=env)


def _wait_ready(bind: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://{bind}/readyz", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"the API on {bind} did not become ready")


def _tokens(settings: Settings) -> dict[str, str]:
    """Development tokens for the demo's curl lines: a reader's, and an auditor's (who may also read)."""
    issuer = DevIssuer(settings.home)
    audience = settings.oidc_audience or DEV_AUDIENCE
    return {
        "READ_TOKEN": issuer.token(["ADMIN_READ"], subject="demo-admin", ttl_s=DEMO_TOKEN_TTL_S, audience=audience,
                                   roles_claim=settings.roles_claim),
        "AUDIT_TOKEN": issuer.token(["ADMIN_AUDIT", "ADMIN_READ"], subject="demo-auditor", ttl_s=DEMO_TOKEN_TTL_S,
                                    audience=audience, roles_claim=settings.roles_claim),
    }


def _check_api(bind: str, tokens: dict[str, str]) -> None:
    request = urllib.request.Request(f"http://{bind}/admin/tx/tx-1d",
                                     headers={"Authorization": f"Bearer {tokens['READ_TOKEN']}"})
    with urllib.request.urlopen(request, timeout=5) as resp:  # noqa: S310 (the demo's own http URL)
        body = json.load(resp)
    if body.get("status") != "POSTED" or body.get("pairing_status") != "COMPLETE":
        raise RuntimeError(f"unexpected answer for tx-1d: {body}")
    _say("checked: GET /admin/tx/tx-1d answers POSTED, COMPLETE")


def _check_metrics(bind: str, metrics_at: str) -> None:
    """Both metrics endpoints answer, each with its own families."""
    for where, family in ((bind, "bo_api_requests_total"), (metrics_at, "bo_ingest_messages_total")):
        with urllib.request.urlopen(f"http://{where}/metrics", timeout=5) as resp:
            text = resp.read().decode()
        if family not in text:
            raise RuntimeError(f"http://{where}/metrics has no {family}")
    _say(f"checked: http://{bind}/metrics and http://{metrics_at}/metrics answer")


def _print_summary(summary: dict[str, Any], bind: str, started: float, tokens: dict[str, str],
                   metrics_at: str) -> None:
    base = f"http://{bind}"
    read, audit = '-H "Authorization: Bearer $READ_TOKEN"', '-H "Authorization: Bearer $AUDIT_TOKEN"'
    print(f"""
bo demo is ready ({time.monotonic() - started:.0f}s)
  event log rows:   {summary['log']}
  ledger entries:   {summary['ledger_entries']}
  payment orders:   {summary['payment_orders']}
  pairs by status:  {json.dumps(summary['pairs'], sort_keys=True)}
  dead letters:     {json.dumps(summary['dead_letters'], sort_keys=True)}

Tokens from the development issuer (12 hours; `bo dev-token --role ROLE` makes more):
  export READ_TOKEN={tokens['READ_TOKEN']}
  export AUDIT_TOKEN={tokens['AUDIT_TOKEN']}

Try (READ_TOKEN carries ADMIN_READ; AUDIT_TOKEN carries ADMIN_AUDIT and ADMIN_READ):
  curl -s {read} {base}/admin/tx/tx-1d
  curl -s {read} {base}/admin/payment-orders/ord-1
  curl -s {read} {base}/admin/payment-orders/ord-3          # amount mismatch
  curl -s {read} '{base}/admin/wallets/w-payer/tx?limit=5'
  curl -s {read} '{base}/admin/wallets/w-17/tx?status_group=SUCCESS&limit=3'
  curl -s {read} {base}/admin/tx/does-not-exist             # 404 problem+json
  curl -s {read} {base}/admin/projections                   # versions, checkpoints, lag, dead letters
  curl -s {audit} {base}/admin/tx/tx-1c/history             # every log row about it, with its fate
  curl -s {audit} {base}/admin/audit-log                    # the access audit trail
  curl -s {read} {base}/admin/tx/tx-1c/history              # 403: history is for auditors
  curl -s {base}/admin/tx/tx-1d                             # 401: no token
  curl -s {base}/openapi.json                               # the OpenAPI 3.1 document
  curl -s {base}/readyz

Metrics (Prometheus text format):
  curl -s {base}/metrics                    # API requests, every worker; projections' figures
  curl -s http://{metrics_at}/metrics       # ingest and projection (this process)
""", flush=True)


def _say(text: str) -> None:
    print(f"bo demo: {text}", flush=True)
