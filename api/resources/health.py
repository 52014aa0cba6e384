"""`GET /healthz` (the process answers), `GET /readyz` (database reachable, migrations current), `/openapi.json`."""

from __future__ import annotations

from collections.abc import Sequence

import falcon
from psycopg_pool import ConnectionPool

from api import openapi
from api.audit_log import check_writable
from api.errors import RETRY_AFTER_S
from eventstore.db import Diagnosis, SchemaExpectation, check_schema, connect, diagnose, require_supported_server
from eventstore.errors import DatabaseUnavailableError, PermanentDatabaseError


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
    """Ready when every database the API uses answers (the primary, and the read replica when
    there is one), runs a supported PostgreSQL and has the code's migrations; otherwise 503
    saying which (never the connection details)."""

    def __init__(self, pools: Sequence[ConnectionPool], schema: SchemaExpectation,
                 audit_pool: ConnectionPool | None = None, audited: bool = True) -> None:
        self.pools = tuple(pools)
        self.schema = schema
        self.audit_pool = (audit_pool or self.pools[0]) if audited else None

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        for pool in self.pools:
            self._check(pool, audit=pool is self.audit_pool)
        resp.media = {"status": "ready", "database": "ok", "migrations": self.schema.head,
                      **({"audit_trail": "writable"} if self.audit_pool is not None else {})}

    def _check(self, pool: ConnectionPool, *, audit: bool) -> None:
        """Also, on the pool the audit rows go to: whether one could be written (no answer of
        `/admin/*` leaves unaudited, so an API that cannot audit serves nothing)."""
        try:
            with pool.connection(timeout=2.0) as conn:
                require_supported_server(conn)
                check_schema(conn, self.schema)
                why = check_writable(conn) if audit else None
        except PermanentDatabaseError as exc:
            raise falcon.HTTPServiceUnavailable(title="Not ready", description=str(exc)) from exc
        except Exception as exc:
            diagnosis = diagnose(exc)
            if diagnosis is None:
                raise
            if diagnosis.transient:  # the pool only says it timed out: a direct connection says why
                diagnosis = _refusal(pool) or diagnosis
            what = "the database is unavailable" if diagnosis.transient else "the database refused the check"
            code = f" (SQLSTATE {diagnosis.sqlstate})" if diagnosis.sqlstate else ""
            raise falcon.HTTPServiceUnavailable(title="Not ready", description=f"{what}{code}",
                                                retry_after=RETRY_AFTER_S) from exc
        if why is not None:
            raise falcon.HTTPServiceUnavailable(title="Not ready", retry_after=RETRY_AFTER_S,
                                                description=f"audit rows cannot be written: {why}")


def _refusal(pool: ConnectionPool) -> Diagnosis | None:
    """Why a direct connection is refused for good (a rotated password, a dropped role), if it is."""
    conninfo = pool.conninfo
    if not isinstance(conninfo, str):
        return None
    try:
        connect(conninfo).close()
    except PermanentDatabaseError as exc:
        return diagnose(exc)
    except DatabaseUnavailableError:
        return None
    return None
