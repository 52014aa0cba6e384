"""`GET /healthz` (the process answers), `GET /readyz` (database reachable, migrations current), `/openapi.json`."""

from __future__ import annotations

import falcon
import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from api import openapi

SELECT_REVISION = "SELECT version_num FROM public.alembic_version"


class HealthResource:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"status": "ok"}


class OpenApiResource:
    """`GET /openapi.json`: the OpenAPI 3.1 document (api/openapi.py), no credentials needed."""

    def __init__(self) -> None:
        self.document = openapi.document()

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = self.document


class ReadyResource:
    def __init__(self, pool: ConnectionPool, expected_revision: str) -> None:
        self.pool = pool
        self.expected_revision = expected_revision

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        try:
            with self.pool.connection(timeout=2.0) as conn:
                row = conn.execute(SELECT_REVISION).fetchone()
        except (psycopg.Error, PoolTimeout) as exc:
            raise falcon.HTTPServiceUnavailable(
                title="Not ready", description="the database is not reachable") from exc
        revision = row[0] if row else None
        if revision != self.expected_revision:
            raise falcon.HTTPServiceUnavailable(
                title="Not ready",
                description=f"migrations are at {revision}, the code expects {self.expected_revision}")
        resp.media = {"status": "ready", "database": "ok", "migrations": revision}
