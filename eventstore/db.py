"""Connections to PostgreSQL: pools, the one judgement of database errors, the one retry loop.

Every process of bo (ingest, projection, the operator commands, the API) asks this module
whether a database error is *transient* (the server is down, restarting, or asked for the
transaction to be tried again: wait and retry) or *permanent* (a function, table or column
is missing, the role lacks a privilege, the server is too old, the migrations do not match
the code: retrying cannot heal it, so stop and say what to do). `diagnose` decides,
`with_retries` acts on it, and `require_supported_server` / `check_schema` are the checks
every long-running command makes before it starts.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import psycopg
from psycopg_pool import ConnectionPool, PoolClosed

from eventstore.errors import (
    DatabaseUnavailableError,
    PermanentDatabaseError,
    SchemaMismatchError,
    UnsupportedServerError,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

# The oldest major version bo runs on: the oldest still supported upstream (15 to 18 in
# December 2026). Everything bo runs, migrations included, is tested on 15 and 18.
MIN_SERVER_VERSION = 150000
SELECT_REVISION = "SELECT version_num FROM public.alembic_version"

# SQL states worth waiting for: the connection classes, the server shutting down or starting
# up, the transaction asked to be retried, and resources the server may get back.
_TRANSIENT_STATES = frozenset({
    "57P01",  # admin_shutdown: the server is stopping (or the connection was terminated)
    "57P02",  # crash_shutdown
    "57P03",  # cannot_connect_now: the server is starting up or in recovery
    "57P05",  # idle_session_timeout
    "57014",  # query_canceled: statement_timeout or pg_cancel_backend
    "40001",  # serialization_failure
    "40P01",  # deadlock_detected
    "55P03",  # lock_not_available: lock_timeout
    "25P03",  # idle_in_transaction_session_timeout
    "58030",  # io_error on the server
})
_TRANSIENT_CLASSES = frozenset({
    "08",  # connection exception
    "53",  # insufficient resources: disk full, out of memory, too many connections
})
_PERMANENT_STATES = frozenset({
    "53400",  # configuration_limit_exceeded (temp_file_limit): the same statement meets it again
})

# What an operator does about each permanent error bo can expect.
_EXPLANATIONS = {
    "42883": "A function bo calls does not exist on this server: check that it runs PostgreSQL 15 or newer"
             " and that `bo migrate` has run.",
    "42P01": "A table bo needs does not exist: run `bo migrate`, and check that BO_DATABASE_URL names bo's database.",
    "42703": "A column bo needs does not exist: the schema is older than the code; run `bo migrate`.",
    "3F000": "Schema bo does not exist: run `bo migrate`, and check that BO_DATABASE_URL names bo's database.",
    "42601": "The server refused bo's SQL as a syntax error: a defect in bo, or a server older than it supports.",
    "42501": "The database role lacks a privilege bo needs: grant it as the migrations do (docs/decisions.md)"
             " or connect with the right role.",
    "28000": "The server refused the login: check the user and credentials in BO_DATABASE_URL.",
    "28P01": "The server refused the password: check the credentials in BO_DATABASE_URL.",
    "3D000": "The database named in BO_DATABASE_URL does not exist.",
}
_DEFAULT_EXPLANATION = "Retrying will not heal this error; bo stops so that an operator can look."


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """What a database error is: transient or permanent, its SQL state and a one-line summary."""

    transient: bool
    sqlstate: str | None
    condition: str | None
    message: str

    def permanent_error(self) -> PermanentDatabaseError:
        explanation = _EXPLANATIONS.get(self.sqlstate or "", _DEFAULT_EXPLANATION)
        return PermanentDatabaseError(explanation, sqlstate=self.sqlstate, condition=self.condition,
                                      message=self.message)

    @property
    def line(self) -> str:
        code = f"{self.sqlstate} {self.condition}: " if self.sqlstate else ""
        return f"{code}{self.message}"


def diagnose(exc: BaseException) -> Diagnosis | None:
    """Judge a database error (psycopg's, or one wrapped by eventsourcing); None if it is not one.

    Transient: the SQL states above, and psycopg's connection-level errors that carry no SQL
    state (refused, reset, closed, pool timeouts). Permanent: every other database error.
    """
    found = _database_error_in(exc)
    if found is None:
        return None
    if isinstance(found, PermanentDatabaseError):
        return Diagnosis(False, found.sqlstate, found.condition, found.message or str(found))
    if isinstance(found, DatabaseUnavailableError):
        return Diagnosis(True, None, None, _first_line(found))
    sqlstate = found.sqlstate
    if isinstance(found, PoolClosed):  # this process closed its own pool: a defect, not an outage
        return Diagnosis(False, None, None, _first_line(found))
    if sqlstate is None:
        refusal = _refused_login(found)
        if refusal is not None:
            return Diagnosis(False, *refusal, _first_line(found))
        transient = isinstance(found, psycopg.OperationalError | psycopg.InterfaceError)
        return Diagnosis(transient, None, None, _first_line(found))
    transient = sqlstate not in _PERMANENT_STATES and (
        sqlstate in _TRANSIENT_STATES or sqlstate[:2] in _TRANSIENT_CLASSES)
    return Diagnosis(transient, sqlstate, _condition(found), _first_line(found))


# A server that refuses a connection says why in a FATAL message, but libpq passes on only the
# text, not its SQL state: these are the refusals that waiting cannot heal, by the state the
# server sent (the texts are PostgreSQL's own, in English; a server set to report in another
# language is judged by the state alone, so its refusals are retried as before).
_LOGIN_REFUSALS = (
    ("password authentication failed", "28P01", "invalid_password"),
    ("authentication failed", "28000", "invalid_authorization_specification"),
    ("no pg_hba.conf entry", "28000", "invalid_authorization_specification"),
    ("pg_hba.conf rejects connection", "28000", "invalid_authorization_specification"),
    ("is not permitted to log in", "28000", "invalid_authorization_specification"),
    ('role "', "28000", "invalid_authorization_specification"),  # role "x" does not exist
    ('database "', "3D000", "invalid_catalog_name"),  # database "x" does not exist
    ("permission denied for database", "42501", "insufficient_privilege"),
)


# libpq's own refusals before the server says anything: the URL lacks what the server asks for.
_CLIENT_REFUSALS = (
    ("fe_sendauth: no password supplied", "28000", "invalid_authorization_specification"),
    ("SSL was required", "08P01", "protocol_violation"),
    ("invalid connection option", "08P01", "protocol_violation"),
    ("invalid sslmode value", "08P01", "protocol_violation"),
)


def _refused_login(exc: psycopg.Error) -> tuple[str, str] | None:
    """(SQL state, condition) of a connection refused for good: by the server, from its FATAL
    text, or by libpq itself, because the URL cannot work."""
    text = str(exc)
    for words, sqlstate, condition in _CLIENT_REFUSALS:
        if words in text:
            return sqlstate, condition
    fatal = text.find("FATAL:")
    if fatal < 0:
        return None
    said = text[fatal:]
    for words, sqlstate, condition in _LOGIN_REFUSALS:
        if words in said and (not words.endswith('"') or "does not exist" in said):
            return sqlstate, condition
    return None


def _database_error_in(exc: BaseException) -> psycopg.Error | DatabaseUnavailableError | PermanentDatabaseError | None:
    """The database error in `exc`'s chain of explicit causes (`raise … from`: eventsourcing and
    SQLAlchemy wrap psycopg's errors so). An exception merely raised while handling a database
    error is not one."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, psycopg.Error | DatabaseUnavailableError | PermanentDatabaseError):
            return current
        seen.add(id(current))
        current = current.__cause__
    return None


def _condition(exc: psycopg.Error) -> str:
    """PostgreSQL's condition name (`undefined_function`) from psycopg's class (`UndefinedFunction`)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(exc).__name__).lower()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class HealthReporter(Protocol):
    """What the retry loop tells a process's /healthz (eventstore.health.Health)."""

    def degraded(self, reason: str, *, transient: bool = True, sqlstate: str | None = None) -> None: ...


def with_retries(
    operation: Callable[[], T],
    *,
    what: str,
    max_delay: float = 10.0,
    attempts: int | None = None,
    stop: threading.Event | None = None,
    sleep: Callable[[float], None] = time.sleep,
    health: HealthReporter | None = None,
    on_transient: Callable[[], None] | None = None,
) -> T:
    """Run `operation`; retry transient database errors with capped exponential backoff.

    A permanent database error raises `PermanentDatabaseError` at once (after telling
    `health`), whatever the attempt. A transient one is retried until it succeeds; it
    raises `DatabaseUnavailableError` after `attempts`, or as soon as `stop` is set (a
    process asked to stop during an outage stops). `on_transient` runs after each transient
    failure (to drop a broken connection). Errors that are not the database's propagate.
    """
    delay, tried = 0.2, 0
    while True:
        try:
            return operation()
        except Exception as exc:
            diagnosis = diagnose(exc)
            if diagnosis is None:
                raise
            if not diagnosis.transient:
                if health is not None:
                    health.degraded(diagnosis.line, transient=False, sqlstate=diagnosis.sqlstate)
                if isinstance(exc, PermanentDatabaseError):
                    raise
                raise diagnosis.permanent_error() from exc
            if on_transient is not None:
                on_transient()
            tried += 1
            if (attempts is not None and tried >= attempts) or (stop is not None and stop.is_set()):
                raise DatabaseUnavailableError(diagnosis.line) from exc
            log.warning("database unavailable, retrying",
                        extra={"what": what, "retry_in_s": delay, "error": diagnosis.line})
            if health is not None:
                health.degraded(diagnosis.line, transient=True, sqlstate=diagnosis.sqlstate)
            if stop is not None:
                if stop.wait(delay):  # asked to stop while waiting: no further attempt
                    raise DatabaseUnavailableError(diagnosis.line) from exc
            else:
                sleep(delay)
            delay = min(delay * 2, max_delay)


# Every connection reads dates as psycopg can load them, whatever the database's defaults.
SESSION_OPTIONS = "-c datestyle=ISO,YMD -c intervalstyle=postgres"
# A look-up never waits long: a statement blocked (by a lock behind DDL, a black-holed network)
# ends as a transient error, answered 503, before gunicorn's worker timeout kills the worker.
READER_OPTIONS = f"{SESSION_OPTIONS} -c max_parallel_workers_per_gather=0 -c jit=off" \
                 " -c statement_timeout=5s -c lock_timeout=2s -c default_transaction_isolation=read\\ committed"
# A dead peer is noticed within seconds instead of the kernel's minutes.
KEEPALIVES: dict[str, Any] = {"keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2, "keepalives_count": 2,
              "tcp_user_timeout": 10_000}


# Where a connection's password comes from when the URL does not carry it: set once per process
# by the composition root (bo/entra.py, BO_DATABASE_AUTH=entra), where it is an Entra ID token
# that expires. Asked at every connection this process opens, by `connection_kwargs`.
_password_source: Callable[[], str] | None = None


def use_password_source(source: Callable[[], str] | None) -> None:
    """Take each new connection's password from `source` (None: from the URL, as before)."""
    global _password_source
    _password_source = source


def connection_kwargs(**fixed: Any) -> dict[str, Any]:
    """The keyword arguments of a new connection: `fixed`, and the password of the moment."""
    source = _password_source
    return {**fixed, "password": source()} if source is not None else dict(fixed)


def connect(url: str, *, autocommit: bool = False) -> psycopg.Connection[tuple[Any, ...]]:
    """One connection; a failure to connect is judged like any other database error."""
    try:
        return psycopg.connect(url, **connection_kwargs(autocommit=autocommit, connect_timeout=5,
                                                        options=SESSION_OPTIONS, **KEEPALIVES))
    except psycopg.Error as exc:
        diagnosis = diagnose(exc)
        if diagnosis is not None and not diagnosis.transient:
            raise diagnosis.permanent_error() from exc
        raise DatabaseUnavailableError(_first_line(exc)) from exc


def server_version(conn: psycopg.Connection[Any]) -> int:
    """The server's version number, e.g. 150014 for 15.14 (libpq's, no round trip)."""
    return int(conn.info.server_version)


def require_supported_server(conn: psycopg.Connection[Any]) -> None:
    """Refuse a server older than `MIN_SERVER_VERSION`, in one line naming the minimum."""
    refuse_unsupported(server_version(conn), conn.info.parameter_status("server_version") or "")


def refuse_unsupported(version: int, shown: str) -> None:
    """`UnsupportedServerError` for a server version number below `MIN_SERVER_VERSION`."""
    if version < MIN_SERVER_VERSION:
        raise UnsupportedServerError(
            f"bo needs PostgreSQL {MIN_SERVER_VERSION // 10000} or newer; upgrade the server",
            message=f"the server runs PostgreSQL {shown or version}")


@dataclass(frozen=True, slots=True)
class SchemaExpectation:
    """The migrations the code was written for: its head, and every revision it ships."""

    head: str
    known: frozenset[str]


def current_revision(conn: psycopg.Connection[Any]) -> str | None:
    """The database's Alembic revision, or None when it has none (never migrated)."""
    try:
        row = conn.execute(SELECT_REVISION).fetchone()
    except psycopg.errors.UndefinedTable:
        row = None
    finally:
        if not conn.autocommit:
            conn.rollback()
    return str(row[0]) if row else None


def check_schema(conn: psycopg.Connection[Any], expected: SchemaExpectation, *, allow_behind: bool = False) -> None:
    """Refuse a database whose migrations are not the code's head.

    A revision the code ships is behind (run `bo migrate`; allowed with `allow_behind`, for
    `bo migrate` itself); any other is ahead (the database was migrated by a newer release).
    """
    revision = current_revision(conn)
    if revision == expected.head or (allow_behind and (revision is None or revision in expected.known)):
        return
    if revision is None:
        raise SchemaMismatchError("Run `bo migrate` first.", message="the database has no bo migrations")
    if revision in expected.known:
        raise SchemaMismatchError(
            f"Run `bo migrate` to bring it to {expected.head}.",
            message=f"the database is at migration {revision}, behind the code's {expected.head}")
    raise SchemaMismatchError(
        f"It was migrated by a newer release than this code ({expected.head}); run that release.",
        message=f"the database is at migration {revision}, which this code does not know")


def preflight(url: str, expected: SchemaExpectation, *, stop: threading.Event | None = None,
              health: HealthReporter | None = None, attempts: int | None = None) -> None:
    """What every long-running command checks before it starts: a supported server, the
    code's migrations. Waits for a server that is not up yet; refuses the rest at once."""
    def check() -> None:
        with connect(url) as conn:
            require_supported_server(conn)
            check_schema(conn, expected)

    with_retries(check, what="start-up checks", stop=stop, health=health, attempts=attempts)



class CheckUnlessRecent:
    """The pool's liveness check, skipped for a connection given back less than `fresh_s` ago.

    A connection in steady use is lent again at once; one that sat idle (when a restart or a
    network cut is likely to have broken it unseen) costs one empty round trip first. A
    connection that broke in the last second fails its request (a 503 the client retries)
    and is discarded by the pool. The same trade as MariaDB Connector's `minDelayValidation`.
    """

    def __init__(self, fresh_s: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.fresh_s, self._clock = fresh_s, clock
        self._returned: weakref.WeakKeyDictionary[psycopg.Connection[Any], float] = weakref.WeakKeyDictionary()

    def check(self, conn: psycopg.Connection[Any]) -> None:
        returned = self._returned.get(conn)
        if returned is not None and self._clock() - returned < self.fresh_s:
            return
        ConnectionPool.check_connection(conn)

    def returned(self, conn: psycopg.Connection[Any]) -> None:
        self._returned[conn] = self._clock()


def open_pool(url: str, *, min_size: int = 1, max_size: int = 4, name: str = "bo", wait_s: float = 3.0
              ) -> ConnectionPool:
    """A pool for readers (the API) that opens its connections lazily; open it inside the process
    that uses it. Connections are in autocommit: every request only reads, each statement sees a
    committed snapshot, and no BEGIN/COMMIT round trips are spent. A connection is checked when it
    is taken from the pool, unless it was given back within the last second (`CheckUnlessRecent`):
    a database restart costs at most the requests on connections used in that second. Look-ups never start
    parallel workers or JIT compilation: both cost milliseconds a single-row answer never wins back.
    A request waits at most `wait_s` for a connection (while the database is down, the pool
    keeps reconnecting in the background and the request fails as unavailable)."""
    liveness = CheckUnlessRecent()
    pool = ConnectionPool(
        url, min_size=min_size, max_size=max_size, open=False, name=name,
        kwargs=lambda: connection_kwargs(connect_timeout=5, autocommit=True, options=READER_OPTIONS, **KEEPALIVES),
        check=liveness.check, reset=liveness.returned, timeout=wait_s,
    )
    pool.open(wait=False)
    return pool
