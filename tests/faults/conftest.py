"""Fault tests get a database of their own per test, and the outage test a PostgreSQL of its own."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from bo.embedded import app_role_url
from bo.migrate import upgrade
from tests.conftest import _create_database, _drop_database
from tests.postgres import Server, start_server

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
    server: Server
    db: Db

    def stop(self) -> None:
        self.server.stop()

    def start(self) -> None:
        self.server.start()


@pytest.fixture
def own_server() -> Iterator[OwnServer]:
    """A PostgreSQL of the chosen kind that this test may stop and start without disturbing the others."""
    server = start_server()
    admin = _create_database(server.url)
    upgrade(admin)
    yield OwnServer(server, Db(admin, app_role_url(admin, role="bo_app_test")))
    server.close()
