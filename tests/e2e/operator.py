"""What the runbook walks share: the `bo` command as an operator types it, a one-value query,
waiting for a condition, and a generated dump to backfill."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

from bo.generate import StreamShape, generate


def bo(env: dict[str, str] | None, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bo", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def write_dump(path: Path, payments: int, seed: int) -> None:
    with path.open("w", encoding="utf-8") as dump:
        for message in generate(StreamShape(payments=payments, seed=seed), "ledger", "orders"):
            dump.write(message.value.decode() + "\n")


def scalar(url: str, query: str) -> Any:
    with psycopg.connect(url) as conn:
        row = conn.execute(query).fetchone()
    return row[0] if row else None


def wait_for(condition: Callable[[], Any], timeout: float = 60, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")
