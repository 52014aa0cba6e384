"""The API on a read replica (BO_READ_DATABASE_URL, docs/runbooks/scaling.md): look-ups on the
replica, every audit row on the primary, and ready only when both answer.

The replica here is a login whose transactions are read-only (`default_transaction_read_only`),
which refuses writes with the error a hot standby gives (SQLSTATE 25006); the data is the
primary's, as a caught-up standby's would be.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import falcon.testing
import psycopg
import pytest
from psycopg import sql

from api.app import AppDeps, create_app
from bo.dev_issuer import DevIssuer
from bo.serve import app_deps
from bo.settings import Settings
from tests.conftest import SAMPLES, login_url
from tests.integration.helpers import append_all, runner, sample_records

REPLICA_LOGIN = "bo_api_replica_test"


@pytest.fixture(scope="module")
def replica_url(admin_database_url: str, database_url: str) -> Iterator[str]:
    append_all(database_url, sample_records(SAMPLES))
    runner(database_url).catch_up()
    role = sql.Identifier(REPLICA_LOGIN)
    with psycopg.connect(admin_database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(role))
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN IN ROLE bo_api").format(role))
        conn.execute(sql.SQL("ALTER ROLE {} SET default_transaction_read_only = on").format(role))
    yield login_url(admin_database_url, REPLICA_LOGIN)
    with psycopg.connect(admin_database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(role))


def audit_count(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM bo.audit_log").fetchone()
    return int(row[0]) if row else 0


def reader(home: Path) -> dict[str, str]:
    """A token of the development issuer under `home` (BO_HOME), which app_deps trusts."""
    return {"Authorization": f"Bearer {DevIssuer(home).token(['ADMIN_READ'], subject='replica-reader')}"}


def settings(tmp_path: Path, replica_url: str) -> Settings:
    return Settings(home=tmp_path, read_database_url=replica_url, cursor_secret="r" * 32)


def test_look_ups_are_answered_from_the_replica_and_audited_on_the_primary(
        replica_url: str, database_url: str, admin_database_url: str, tmp_path: Path) -> None:
    deps = app_deps(settings(tmp_path, replica_url), database_url)
    try:
        client = falcon.testing.TestClient(create_app(deps))
        before = audit_count(admin_database_url)
        answer = client.simulate_get("/admin/tx/tx-1d", headers=reader(tmp_path))
        assert answer.status_code == 200, answer.text
        assert answer.json["tx_id"] == "tx-1d"
        assert audit_count(admin_database_url) == before + 1
        with deps.pool.connection() as conn:
            row = conn.execute("SELECT current_user, current_setting('transaction_read_only')").fetchone()
        assert row == (REPLICA_LOGIN, "on")
        assert client.simulate_get("/readyz").status_code == 200
    finally:
        deps.pool.close()
        if deps.audit_pool is not None:
            deps.audit_pool.close()


def test_without_the_primary_the_replica_cannot_take_the_audit_row_and_the_answer_is_503(
        replica_url: str, admin_database_url: str, tmp_path: Path) -> None:
    deps = app_deps(Settings(home=tmp_path, cursor_secret="r" * 32), replica_url)  # everything on the replica
    try:
        assert deps.audit_pool is None
        client = falcon.testing.TestClient(create_app(deps))
        before = audit_count(admin_database_url)
        assert client.simulate_get("/admin/tx/tx-1d", headers=reader(tmp_path)).status_code == 503
        assert audit_count(admin_database_url) == before  # fail closed: no answer leaves unaudited
    finally:
        deps.pool.close()


def test_not_ready_when_the_primary_refuses_even_if_the_replica_answers(
        replica_url: str, database_url: str, tmp_path: Path) -> None:
    refused = login_url(database_url, "bo_no_such_login")
    deps = app_deps(settings(tmp_path, replica_url), refused)
    try:
        ready = falcon.testing.TestClient(create_app(deps)).simulate_get("/readyz")
        assert ready.status_code == 503, ready.text
    finally:
        deps.pool.close()
        if deps.audit_pool is not None:
            deps.audit_pool.close()


def test_app_deps_without_a_replica_use_one_pool_for_both(database_url: str, tmp_path: Path) -> None:
    deps: AppDeps = app_deps(Settings(home=tmp_path, cursor_secret="r" * 32), database_url)
    try:
        assert deps.audit_pool is None
    finally:
        deps.pool.close()
