"""One pooled connection per request, shared by its look-up and its audit row.

A request takes a connection from the pool the first time it needs one (`connection(req)`),
keeps it for the rest of the request, and gives it back when the answer is made
(`RequestConnectionMiddleware`, outside every other middleware, so the audit row of
api/audit.py is written on it first). So a look-up and its audit row cost one checkout
(the pool checks a connection when it lends it) instead of two, and a request holds one
connection (two only when its first broke and the audit row needs a fresh one).

A connection that broke or was left inside a transaction is not lent again within the
request: the audit row then takes a fresh one (`for_audit`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import falcon
import psycopg
from psycopg import pq
from psycopg_pool import ConnectionPool

Connection = psycopg.Connection[Any]


class RequestConnections:
    def __init__(self, pool: ConnectionPool, audit_pool: ConnectionPool | None = None) -> None:
        self.pool = pool
        self.audit_pool = audit_pool  # the primary's, when `pool` is a read replica's

    @contextmanager
    def connection(self, req: falcon.Request) -> Iterator[Connection]:
        """The request's connection, taken from the pool on first use."""
        conn: Connection | None = getattr(req.context, "connection", None)
        if conn is None or not _reusable(conn):
            conn = self.pool.getconn()
            self._keep(req, conn)
        yield conn

    @contextmanager
    def for_audit(self, req: falcon.Request, timeout: float | None) -> Iterator[Connection]:
        """The request's connection if it is still usable, or a fresh one waited for at most `timeout`;
        with a read replica, always one of the primary's (a standby takes no writes)."""
        if self.audit_pool is not None:
            with self.audit_pool.connection(timeout=timeout) as primary:
                yield primary
            return
        conn: Connection | None = getattr(req.context, "connection", None)
        if conn is not None and _reusable(conn):
            yield conn
            return
        with self.pool.connection(timeout=timeout) as fresh:
            yield fresh

    def release(self, req: falcon.Request) -> None:
        for conn in getattr(req.context, "connections", ()):
            self.pool.putconn(conn)  # a broken one is discarded, an open transaction rolled back
        req.context.connections = []
        req.context.connection = None

    def _keep(self, req: falcon.Request, conn: Connection) -> None:
        if not hasattr(req.context, "connections"):
            req.context.connections = []
        req.context.connections.append(conn)
        req.context.connection = conn


def _reusable(conn: Connection) -> bool:
    return not conn.broken and conn.info.transaction_status == pq.TransactionStatus.IDLE


class RequestConnectionMiddleware:
    """Gives the request's connections back once the answer is made (and audited)."""

    def __init__(self, connections: RequestConnections) -> None:
        self.connections = connections

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource: object,
                         req_succeeded: bool) -> None:
        self.connections.release(req)
