"""Backfill benchmark: a 1 GB JSON Lines dump through the real `bo backfill`, memory flat.

One command, no arguments: `python bench/backfill.py`. It writes a ~1 GB dump of ~400-byte
envelopes (1% invalid lines) to a temporary directory, starts an embedded PostgreSQL,
runs `bo backfill` on it while sampling the process's peak RSS (VmHWM), then runs it a
second time to show that nothing new is appended. Prints lines/s and peak RSS.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.server import bench_database  # noqa: E402
from bo.embedded import app_role_url  # noqa: E402
from bo.migrate import upgrade  # noqa: E402

TARGET_BYTES = 1_000_000_000


def write_dump(path: Path) -> int:
    lines = 0
    with path.open("w", encoding="utf-8") as dump:
        written = 0
        while written < TARGET_BYTES:
            if lines % 100 == 99:
                line = "{this line is not json\n"
            else:
                line = json.dumps({"event_id": f"bf-{lines}", "event_type": "LedgerEntryUpserted", "schema_version": 1,
                                   "payload": {"tx_id": f"tx-bf-{lines}", "wallet_id": f"w-{lines % 977}",
                                               "entry_type": "DEBIT", "amount": f"{lines % 99999}.50",
                                               "currency": "KRW", "status": "POSTED", "version": 1,
                                               "related_id": f"ord-bf-{lines // 2}",
                                               "updated_at": "2026-02-05T09:00:03Z",
                                               "created_at": "2026-02-05T09:00:00Z"}}) + "\n"
            dump.write(line)
            written += len(line)
            lines += 1
    return lines


def run_backfill(env: dict[str, str], dump: Path) -> tuple[float, float, str]:
    started = time.monotonic()
    process = subprocess.Popen([sys.executable, "-m", "bo", "backfill", str(dump)], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    peak = 0
    while process.poll() is None:
        try:
            for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]))
        except FileNotFoundError:
            break
        time.sleep(0.5)
    out = process.stdout.read() if process.stdout else ""
    return time.monotonic() - started, peak / 1024, out.strip().splitlines()[0] if out.strip() else ""


def main() -> None:
    with bench_database("bo-bench-backfill-") as (home, admin):
        dump = home / "dump.jsonl"
        lines = write_dump(dump)
        print(f"dump: {dump.stat().st_size / 1e9:.2f} GB, {lines} lines", flush=True)
        upgrade(admin)
        env = {**os.environ, "BO_DATABASE_URL": app_role_url(admin), "BO_HOME": str(home)}
        seconds, rss, summary = run_backfill(env, dump)
        print(f"first load: {summary} in {seconds:.0f} s, peak RSS {rss:.0f} MB", flush=True)
        again, rss_again, summary_again = run_backfill(env, dump)
        print(f"second load: {summary_again} in {again:.0f} s, peak RSS {rss_again:.0f} MB", flush=True)
        print(f"backfill: {lines / seconds:.0f} lines/s, peak RSS {max(rss, rss_again):.0f} MB")


if __name__ == "__main__":
    main()
