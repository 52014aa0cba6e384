"""The judgement of database errors on a real server: what it answers, bo classifies right."""

from __future__ import annotations

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from eventstore.db import connect, diagnose
from eventstore.errors import PermanentDatabaseError


def judged(url: str, statement: str) -> tuple[bool, str | None]:
    with psycopg.connect(url) as conn, pytest.raises(psycopg.Error) as raised:
        conn.execute(statement)
    diagnosis = diagnose(raised.value)
    assert diagnosis is not None
    return diagnosis.transient, diagnosis.sqlstate


def test_what_a_missing_function_table_or_column_or_privilege_raises_is_permanent(database_url: str) -> None:
    assert judged(database_url, "SELECT pg_no_such_function('x', 'y')") == (False, "42883")
    assert judged(database_url, "SELECT * FROM bo.no_such_table") == (False, "42P01")
    assert judged(database_url, "SELECT no_such_column FROM bo.event_log") == (False, "42703")
    assert judged(database_url, "SELEKT 1") == (False, "42601")
    assert judged(database_url, "TRUNCATE bo.event_log") == (False, "42501")  # the app role may never


def test_a_terminated_session_and_a_statement_timeout_are_transient(database_url: str) -> None:
    assert judged(database_url, "SET statement_timeout = 50; SELECT pg_sleep(2)") == (True, "57014")
    assert judged(database_url, "SELECT pg_terminate_backend(pg_backend_pid())")[0] is True


@pytest.mark.parametrize(("params", "sqlstate"), [({"dbname": "bo_no_such_database"}, "3D000"),
                                                  ({"user": "bo_no_such_role"}, "28000")])
def test_connecting_to_a_database_or_as_a_role_that_does_not_exist_is_permanent(
        database_url: str, params: dict[str, str], sqlstate: str) -> None:
    with pytest.raises(PermanentDatabaseError) as raised:
        connect(make_conninfo(database_url, **params))
    assert raised.value.sqlstate == sqlstate
