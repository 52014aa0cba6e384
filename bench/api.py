"""API benchmark: `bo serve` (gunicorn, 2 sync workers) over 1,000,000 ledger entries, 64 clients.

One command, no arguments: `python bench/api.py`. It starts an embedded PostgreSQL, fills it
in SQL with 1,000,000 log rows, ledger entries (1,000 wallets), 500,000 orders and pairs,
ANALYZEs, starts the real `bo serve --workers 2`, and runs a closed-loop load of 64
concurrent connections for 30 s each:

1. `GET /admin/tx/{tx_id}` on random ids;
2. a mix of look-ups: 60 % transactions, 20 % wallet pages (limit 20), 15 % payment orders
   with their legs, 5 % transaction histories.

Every request carries a development token and writes its audit row, as in production.
The load generator is wrk (`apt-get install wrk`), on the same 2 cores as the server. It
prints requests/s, p50/p95/p99 and errors (non-2xx and socket errors); the last line is the
headline figure.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from bo.dev_issuer import DevIssuer  # noqa: E402
from bo.embedded import app_role_url, embedded_database_url  # noqa: E402
from bo.migrate import upgrade  # noqa: E402

ENTRIES = 1_000_000
SECONDS = 30
CLIENTS = 64

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


def run_wrk(base: str, script: str, label: str, workdir: Path, token: str) -> dict[str, float]:
    path = workdir / (re.sub(r"[^A-Za-z0-9]+", "-", label).strip("-") + ".lua")
    path.write_text(script + REPORT)
    out = subprocess.run(["wrk", "-t", "2", "-c", str(CLIENTS), "-d", f"{SECONDS}s", "--timeout", "5s",
                          "-H", f"Authorization: Bearer {token}", "-s", str(path), base],
                         capture_output=True, text=True, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("RESULT"))
    figures = {k: float(v) for k, v in re.findall(r"(\w+)=([0-9.]+)", line)}
    figures["rps"] = figures["requests"] / figures["seconds"]
    print(f"{label}: {figures['rps']:,.0f} requests/s, p50 {figures['p50']:.1f} ms, p95 {figures['p95']:.1f} ms,"
          f" p99 {figures['p99']:.1f} ms, non-2xx {int(figures['non2xx'])}, socket errors {int(figures['errors'])}",
          flush=True)
    return figures


def main() -> None:
    if shutil.which("wrk") is None:
        raise SystemExit("bench/api.py needs wrk: apt-get install wrk")
    home = Path(tempfile.mkdtemp(prefix="bo-bench-api-"))
    os.chmod(home, 0o755)
    admin = embedded_database_url(home / "pg")
    upgrade(admin)
    started = time.monotonic()
    with psycopg.connect(admin, autocommit=True) as conn:
        for statement in FILL:
            conn.execute(statement)
    print(f"filled {ENTRIES:,} ledger entries in {time.monotonic() - started:.0f} s", flush=True)
    port = free_port()
    env = {**os.environ, "BO_DATABASE_URL": app_role_url(admin), "BO_LOG_LEVEL": "WARNING", "BO_HOME": str(home)}
    # Authentication and the audit trail are on, as in production: a development token.
    token = DevIssuer(home).token(["ADMIN_READ", "ADMIN_AUDIT"], subject="bench", ttl_s=3600)
    server = subprocess.Popen([sys.executable, "-m", "bo", "serve", "--bind", f"127.0.0.1:{port}", "--workers", "2"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                request = urllib.request.Request(base + "/admin/tx/tx-1", headers={"Authorization": f"Bearer {token}"})
                with urllib.request.urlopen(request, timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        run_wrk(base, TX_ONLY, "warm-up", home, token)
        tx = run_wrk(base, TX_ONLY, "GET /admin/tx/{tx_id}", home, token)
        mix = run_wrk(base, MIX, "mix (60% tx, 20% wallet pages, 15% orders, 5% histories)", home, token)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    errors = int(tx["non2xx"] + tx["errors"] + mix["non2xx"] + mix["errors"])
    print(f"errors: {errors}")
    print(f"api: {tx['rps']:,.0f} requests/s for GET /admin/tx/{{tx_id}} at p95 {tx['p95']:.1f} ms;"
          f" mix p99 {mix['p99']:.1f} ms")


if __name__ == "__main__":
    main()
