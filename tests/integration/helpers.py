"""Helpers for integration tests: sample messages straight into the log, a runner, the API with tokens."""

from __future__ import annotations

import atexit
import functools
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import falcon
import falcon.testing
import psycopg
from psycopg_pool import ConnectionPool

from api.app import AppDeps, create_app
from api.auth import ADMIN_AUDIT, ADMIN_READ, BearerTokens
from bo.dev_issuer import DevIssuer
from bo.migrate import schema_expectation
from bo.serve import authenticator
from bo.settings import Environment, Settings
from eventstore import log
from eventstore.ingest.decode import decode
from eventstore.records import KafkaCoordinates, LogRecord
from projections import registry
from projections.runner import SQL_ENGINE, ProjectionRunner
from projections.tracking import datastore_for

TOPIC_OF = {"LedgerEntryUpserted": "bo.ledger-entries.v1", "PaymentOrderUpserted": "bo.payment-orders.v1"}


def sample_records(path: Path, *, start_offset: int = 0) -> list[LogRecord]:
    records = []
    for offset, line in enumerate(path.read_text().splitlines(), start=start_offset):
        item = json.loads(line)
        coordinates = KafkaCoordinates(item["topic"], 0, offset, None)
        headers = [(k, v.encode()) for k, v in item["headers"].items()]
        records.append(decode(coordinates, item["key"].encode(), item["value"].encode(), headers))
    return records


def append_all(url: str, records: list[LogRecord], group: str = "test", batch: int = 1000) -> None:
    with psycopg.connect(url) as conn:
        for i in range(0, len(records), batch):
            log.append(conn, group, records[i : i + batch])


def runner(url: str, batch_size: int = 1000, engine: str = SQL_ENGINE, lanes: int = 1) -> ProjectionRunner:
    """A runner of the versions the registry says run, as `bo project` builds it."""
    datastore = datastore_for(url, pool_size=lanes + 1)
    with datastore.transaction(commit=False) as cur:
        projectors = registry.running(cur)
    return ProjectionRunner(datastore, projectors, TOPIC_OF, batch_size=batch_size, engine=engine, lanes=lanes)


def rows(url: str, query: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    with psycopg.connect(url, row_factory=psycopg.rows.dict_row) as conn:
        return conn.execute(query, params).fetchall()  # type: ignore[arg-type]


@functools.cache
def dev_issuer() -> tuple[DevIssuer, BearerTokens]:
    """The development issuer (its key in a folder of this test process) and the API's
    authenticator trusting it, built as `bo serve` builds it for local use."""
    home = Path(tempfile.mkdtemp(prefix="bo-test-issuer-"))
    atexit.register(shutil.rmtree, home, ignore_errors=True)
    settings = Settings(  # every value given: nothing is read from the developer's BO_* environment
        _env_file=None, home=home, env=Environment.LOCAL,  # type: ignore[call-arg]
        oidc_issuer=None, oidc_audience=None, oidc_jwks_url=None, roles_claim="roles", audit_implies_read=False)
    return DevIssuer(settings.home), authenticator(settings)


def bearer(*roles: str, subject: str = "tester") -> dict[str, str]:
    """An Authorization header with a development token carrying `roles`."""
    return {"Authorization": f"Bearer {dev_issuer()[0].token(list(roles), subject=subject)}"}


def api_app(pool: ConnectionPool, cursor_secret: bytes = b"t" * 32) -> falcon.App[falcon.Request, falcon.Response]:
    return create_app(AppDeps(pool=pool, authenticator=dev_issuer()[1], cursor_secret=cursor_secret,
                              schema=schema_expectation()))


def api_client(pool: ConnectionPool, *, roles: tuple[str, ...] = (ADMIN_READ, ADMIN_AUDIT),
               cursor_secret: bytes = b"t" * 32) -> falcon.testing.TestClient:
    """The WSGI app with every request carrying a valid token with `roles` (unless a test sets its own)."""
    return falcon.testing.TestClient(api_app(pool, cursor_secret), headers=bearer(*roles))
