"""Shared fixtures: a real PostgreSQL (`BO_TEST_POSTGRES`, see tests/postgres.py), a real broker, ids.

Each test module gets a fresh database built by the real migrations. The broker is
librdkafka's mock cluster, started once per session; each test makes its own topics.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from bo.embedded import DevBroker, app_role_url
from bo.migrate import upgrade
from tests.postgres import Server, describe, start_server

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "samples" / "messages.jsonl"
SCHEMA = REPO / "contracts" / "events.schema.json"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def random_ref(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def pytest_report_header() -> str:
    return describe()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Server]:
    """The session's PostgreSQL server, of the kind `BO_TEST_POSTGRES` names."""
    server = start_server()
    yield server
    server.close()


@pytest.fixture(scope="session")
def pg_base_url(pg_server: Server) -> str:
    return pg_server.url


def _create_database(base: str) -> str:
    name = f"bo_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return psycopg.conninfo.make_conninfo(base, dbname=name)


def login_url(url: str, role: str) -> str:
    """`url` as the login `role` would connect, with no password of its own."""
    return psycopg.conninfo.make_conninfo(url, user=role, password=None)


def _drop_database(base: str, url: str) -> None:
    name = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(str(name))))


@pytest.fixture(scope="module")
def empty_database_url(pg_base_url: str) -> Iterator[str]:
    url = _create_database(pg_base_url)
    yield url
    _drop_database(pg_base_url, url)


@pytest.fixture(scope="module")
def admin_database_url(pg_base_url: str) -> Iterator[str]:
    """A fresh database per test module, schema built by the real Alembic migrations (superuser)."""
    url = _create_database(pg_base_url)
    upgrade(url)
    yield url
    _drop_database(pg_base_url, url)


@pytest.fixture(scope="module")
def database_url(admin_database_url: str) -> str:
    """The same database as the application's role sees it: it may append to the log, never change it."""
    return app_role_url(admin_database_url, role="bo_app_test")


@pytest.fixture(scope="session")
def broker() -> Iterator[DevBroker]:
    dev_broker = DevBroker()
    yield dev_broker
    dev_broker.close()


@pytest.fixture
def topics() -> tuple[str, str]:
    """A ledger and an orders topic of this test's own."""
    return random_ref("ledger"), random_ref("orders")


@pytest.fixture
def as_superuser(admin_database_url: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """A superuser who switches the log's append-only triggers off for the length of the test."""
    with psycopg.connect(admin_database_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE bo.event_log DISABLE TRIGGER USER")
        try:
            yield conn
        finally:
            conn.execute("ALTER TABLE bo.event_log ENABLE TRIGGER USER")
