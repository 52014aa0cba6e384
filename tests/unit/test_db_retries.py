"""One judgement of database errors (transient or permanent) and one retry loop acting on it."""

from __future__ import annotations

import threading
from collections.abc import Callable

import psycopg
import pytest
import sqlalchemy.exc
from eventsourcing.persistence import OperationalError as WrappedOperationalError
from eventsourcing.persistence import ProgrammingError as WrappedProgrammingError
from psycopg import errors
from psycopg_pool import PoolClosed, PoolTimeout

from eventstore.db import MIN_SERVER_VERSION, diagnose, refuse_unsupported, with_retries
from eventstore.errors import (
    DatabaseUnavailableError,
    PermanentDatabaseError,
    SchemaMismatchError,
    UnsupportedServerError,
)
from eventstore.health import Health


def failing(times: int, error: Callable[[], Exception]) -> tuple[list[int], Callable[[], str]]:
    calls: list[int] = []

    def operation() -> str:
        calls.append(1)
        if len(calls) <= times:
            raise error()
        return "ok"

    return calls, operation


def wrapped(cause: Exception, wrapper: type[Exception]) -> Exception:
    """As eventsourcing's datastore raises them: its own class, the psycopg error as the cause."""
    try:
        raise wrapper(str(cause)) from cause
    except wrapper as exc:
        return exc


@pytest.mark.parametrize("error", [
    errors.AdminShutdown("terminating connection due to administrator command"),
    errors.CannotConnectNow("the database system is starting up"),
    errors.SerializationFailure("could not serialize access"),
    errors.DeadlockDetected("deadlock detected"),
    errors.TooManyConnections("sorry, too many clients already"),
    errors.QueryCanceled("canceling statement due to statement timeout"),
    errors.ConnectionFailure("connection failure"),
    psycopg.OperationalError("connection failed: Connection refused"),
    psycopg.InterfaceError("the connection is closed"),
    PoolTimeout("couldn't get a connection after 3.00 sec"),
    DatabaseUnavailableError("down"),
    wrapped(errors.AdminShutdown("terminating connection"), WrappedOperationalError),
], ids=lambda e: type(e).__name__)
def test_outages_and_retryable_transactions_are_transient(error: Exception) -> None:
    diagnosis = diagnose(error)
    assert diagnosis is not None and diagnosis.transient


@pytest.mark.parametrize(("error", "sqlstate"), [
    (errors.UndefinedFunction("function pg_input_is_valid(text, unknown) does not exist"), "42883"),
    (errors.UndefinedTable('relation "bo.event_log" does not exist'), "42P01"),
    (errors.UndefinedColumn('column "amount_minor" does not exist'), "42703"),
    (errors.SyntaxError('syntax error at or near "MERGE"'), "42601"),
    (errors.InsufficientPrivilege("permission denied for table event_log"), "42501"),
    (errors.InvalidPassword("password authentication failed"), "28P01"),
    (errors.InvalidCatalogName('database "bo" does not exist'), "3D000"),
    (wrapped(errors.UndefinedFunction("function f() does not exist"), WrappedProgrammingError), "42883"),
], ids=lambda e: type(e).__name__ if isinstance(e, Exception) else e)
def test_missing_objects_privileges_and_syntax_are_permanent(error: Exception, sqlstate: str) -> None:
    diagnosis = diagnose(error)
    assert diagnosis is not None and not diagnosis.transient
    assert diagnosis.sqlstate == sqlstate


LIBPQ = 'connection failed: connection to server at "127.0.0.1", port 5432 failed: FATAL:  '


@pytest.mark.parametrize(("said", "sqlstate"), [
    ('password authentication failed for user "bo_service"', "28P01"),
    ('role "nobody" does not exist', "28000"),
    ('database "nodb" does not exist', "3D000"),
    ('no pg_hba.conf entry for host "10.0.0.7", user "bo", database "bo", no encryption', "28000"),
    ('role "bo_app" is not permitted to log in', "28000"),
    ('permission denied for database "bo"', "42501"),
])
def test_a_login_the_server_refuses_is_permanent_although_libpq_gives_no_sql_state(said: str, sqlstate: str) -> None:
    diagnosis = diagnose(psycopg.OperationalError(LIBPQ + said))
    assert diagnosis is not None and not diagnosis.transient and diagnosis.sqlstate == sqlstate


@pytest.mark.parametrize("said", [
    "the database system is starting up",
    "the database system is shutting down",
    "sorry, too many clients already",
    'database "bo" is not currently accepting connections',
])
def test_a_server_that_cannot_take_the_connection_yet_is_transient(said: str) -> None:
    diagnosis = diagnose(psycopg.OperationalError(LIBPQ + said))
    assert diagnosis is not None and diagnosis.transient


def test_a_pool_this_process_closed_is_a_defect_not_an_outage() -> None:
    diagnosis = diagnose(PoolClosed("the pool 'api' is already closed"))
    assert diagnosis is not None and not diagnosis.transient


def test_errors_alembic_raises_through_sqlalchemy_are_judged_by_their_psycopg_cause() -> None:
    cause = errors.InsufficientPrivilege("permission denied for schema public")
    try:
        raise sqlalchemy.exc.ProgrammingError("CREATE TABLE …", {}, cause) from cause
    except sqlalchemy.exc.ProgrammingError as exc:
        diagnosis = diagnose(exc)
    assert diagnosis is not None and (diagnosis.transient, diagnosis.sqlstate) == (False, "42501")


def test_an_error_raised_while_handling_a_database_error_is_not_judged_as_one() -> None:
    try:
        try:
            raise errors.AdminShutdown("terminating connection")
        except psycopg.Error:
            raise KeyError("a defect in the handler") from None
    except KeyError as exc:
        assert diagnose(exc) is None


def test_an_error_that_is_not_the_databases_is_not_judged() -> None:
    assert diagnose(KeyError("tx_id")) is None
    assert diagnose(ValueError("bad")) is None


def test_a_permanent_error_names_its_sql_state_condition_and_what_to_do() -> None:
    diagnosis = diagnose(errors.UndefinedFunction("function pg_input_is_valid(text, unknown) does not exist"))
    assert diagnosis is not None
    line = str(diagnosis.permanent_error())
    assert "\n" not in line
    assert line.startswith("SQLSTATE 42883 (undefined_function): function pg_input_is_valid")
    assert "PostgreSQL 15 or newer" in line


def test_retries_transient_errors_until_the_database_answers_with_capped_backoff() -> None:
    calls, operation = failing(6, lambda: errors.AdminShutdown("shutting down"))
    slept: list[float] = []
    assert with_retries(operation, what="t", max_delay=1.0, sleep=slept.append) == "ok"
    assert len(calls) == 7
    assert slept == [0.2, 0.4, 0.8, 1.0, 1.0, 1.0]


def test_a_permanent_error_fails_at_once_without_a_retry() -> None:
    calls, operation = failing(1000, lambda: errors.UndefinedFunction("function f() does not exist"))
    slept: list[float] = []
    health = Health("t")
    with pytest.raises(PermanentDatabaseError) as raised:
        with_retries(operation, what="t", sleep=slept.append, health=health)
    assert len(calls) == 1 and slept == []
    assert raised.value.sqlstate == "42883"
    snapshot = health.snapshot()
    assert (snapshot["status"], snapshot["error_kind"], snapshot["sqlstate"]) == ("failed", "permanent", "42883")


def test_while_it_waits_health_says_the_error_is_transient() -> None:
    health = Health("t")
    seen: list[dict[str, object]] = []

    def operation() -> str:
        if len(seen) < 2:
            seen.append(health.snapshot())
            raise errors.AdminShutdown("terminating connection due to administrator command")
        return "ok"

    with_retries(operation, what="t", sleep=lambda _s: seen.append(health.snapshot()), health=health)
    waiting = seen[1]
    assert (waiting["status"], waiting["error_kind"], waiting["sqlstate"]) == ("degraded", "transient", "57P01")


def test_the_start_up_refusals_are_permanent_and_not_retried() -> None:
    for error in (UnsupportedServerError("upgrade"), SchemaMismatchError("run bo migrate")):
        calls, operation = failing(1000, lambda error=error: error)  # type: ignore[misc]
        with pytest.raises(type(error)):
            with_retries(operation, what="t", sleep=lambda _s: None)
        assert len(calls) == 1


def test_gives_up_after_the_given_attempts() -> None:
    _, operation = failing(10, lambda: psycopg.OperationalError("refused"))
    with pytest.raises(DatabaseUnavailableError):
        with_retries(operation, what="t", attempts=3, sleep=lambda _s: None)


def test_a_stop_request_during_an_outage_ends_the_retries() -> None:
    calls, operation = failing(1000, lambda: psycopg.OperationalError("refused"))
    stop = threading.Event()
    stop.set()
    with pytest.raises(DatabaseUnavailableError):
        with_retries(operation, what="t", stop=stop)
    assert len(calls) == 1


def test_errors_that_are_not_the_databases_propagate_unretried() -> None:
    calls, operation = failing(1000, lambda: KeyError("tx_id"))
    with pytest.raises(KeyError):
        with_retries(operation, what="t", sleep=lambda _s: None)
    assert len(calls) == 1


@pytest.mark.parametrize(("version", "shown"), [(140011, "14.11"), (130020, "13.20"), (90624, "9.6.24")])
def test_a_server_older_than_15_is_refused_in_one_line_naming_the_minimum(version: int, shown: str) -> None:
    with pytest.raises(UnsupportedServerError) as raised:
        refuse_unsupported(version, shown)
    line = str(raised.value)
    assert "\n" not in line
    assert f"PostgreSQL {shown}" in line and "PostgreSQL 15 or newer" in line


@pytest.mark.parametrize("version", [MIN_SERVER_VERSION, 150014, 160011, 170010, 180001])
def test_every_supported_major_is_accepted(version: int) -> None:
    refuse_unsupported(version, str(version))
