"""Machine benchmark: what one round trip between two processes costs here, across cores and on one.

One command, no arguments: `python bench/machine.py`. Every look-up, append and projector
statement is a request answered by another process (gunicorn by wrk, PostgreSQL by bo), so
the price of waking the peer bounds every figure of the other benchmarks. It measures:

1. a one-byte ping-pong between two processes over a socket pair, each free to run on any
   core (as gunicorn, PostgreSQL and wrk run), then both pinned to one core;
2. `SELECT 1` through psycopg against the benchmark's PostgreSQL (bench/server.py), the
   least a database round trip can cost, with the client free, then pinned beside its backend.

The last line is the cross-core round trip and its ratio to the same round trip on one core.
On the machine `../shared/perf-limits.md` was measured on, a bare pooled HTTP look-up made
5,100 requests/s; where a cross-core round trip costs hundreds of microseconds, each request's
four or five wake-ups (client → worker → PostgreSQL → worker → client) cap it far below that.
The server is stopped and its data removed on success, on failure and on Ctrl-C.
"""

from __future__ import annotations

import os
import socket
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from bench.server import bench_database  # noqa: E402

ROUND_TRIPS = 20_000
QUERIES = 5_000
RUNS = 3


def ping_pong(pin: int | None) -> float:
    """Microseconds per round trip of one byte between this process and a forked echo."""
    ours, theirs = socket.socketpair()
    child = os.fork()
    if child == 0:  # the echo
        ours.close()
        if pin is not None:
            os.sched_setaffinity(0, {pin})
        while data := theirs.recv(64):
            theirs.send(data)
        os._exit(0)
    theirs.close()
    before = os.sched_getaffinity(0)
    try:
        if pin is not None:
            os.sched_setaffinity(0, {pin})
        started = time.perf_counter()
        for _ in range(ROUND_TRIPS):
            ours.send(b"x")
            ours.recv(64)
        return (time.perf_counter() - started) / ROUND_TRIPS * 1e6
    finally:
        os.sched_setaffinity(0, before)
        ours.close()
        os.waitpid(child, 0)


def select_one(url: str, pin_beside_backend: bool) -> float:
    """Microseconds per `SELECT 1` round trip on one connection."""
    before = os.sched_getaffinity(0)
    with psycopg.connect(url, autocommit=True) as conn:
        try:
            if pin_beside_backend:
                core = min(os.sched_getaffinity(0))
                os.sched_setaffinity(conn.info.backend_pid, {core})
                os.sched_setaffinity(0, {core})
            for _ in range(100):
                conn.execute("SELECT 1", prepare=True).fetchone()
            started = time.perf_counter()
            for _ in range(QUERIES):
                conn.execute("SELECT 1", prepare=True).fetchone()
            return (time.perf_counter() - started) / QUERIES * 1e6
        finally:
            os.sched_setaffinity(0, before)


def median_of(measure: Callable[[], float]) -> float:
    return statistics.median(measure() for _ in range(RUNS))


def main() -> None:
    cores = sorted(os.sched_getaffinity(0))
    print(f"cores this process may use: {len(cores)}", flush=True)
    free = median_of(lambda: ping_pong(None))
    pinned = median_of(lambda: ping_pong(cores[0]))
    print(f"socket pair round trip, free to use any core: {free:,.1f} µs; both on one core: {pinned:,.1f} µs",
          flush=True)
    with bench_database("bo-bench-machine-") as (_, admin):
        query_free = median_of(lambda: select_one(admin, False))
        query_pinned = median_of(lambda: select_one(admin, True))
    print(f"SELECT 1 through psycopg, free: {query_free:,.1f} µs; client and backend on one core:"
          f" {query_pinned:,.1f} µs", flush=True)
    print(f"machine: a round trip between two processes costs {free:,.1f} µs across cores"
          f" ({free / pinned:,.1f}× the {pinned:,.1f} µs on one core in this run)")


if __name__ == "__main__":
    main()
