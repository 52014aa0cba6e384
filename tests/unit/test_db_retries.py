"""Retrying while the database is down: capped backoff, and stopping when asked."""

from __future__ import annotations

import threading

import pytest

from eventstore.db import with_retries
from eventstore.errors import DatabaseUnavailableError


def failing(times: int) -> tuple[list[int], object]:
    calls: list[int] = []

    def operation() -> str:
        calls.append(1)
        if len(calls) <= times:
            raise DatabaseUnavailableError("down")
        return "ok"

    return calls, operation


def test_retries_until_the_database_answers_with_capped_backoff() -> None:
    calls, operation = failing(6)
    slept: list[float] = []
    assert with_retries(operation, what="t", max_delay=1.0, sleep=slept.append) == "ok"  # type: ignore[arg-type]
    assert len(calls) == 7
    assert slept == [0.2, 0.4, 0.8, 1.0, 1.0, 1.0]


def test_gives_up_after_the_given_attempts() -> None:
    _, operation = failing(10)
    with pytest.raises(DatabaseUnavailableError):
        with_retries(operation, what="t", attempts=3, sleep=lambda _s: None)  # type: ignore[arg-type]


def test_a_stop_request_during_an_outage_ends_the_retries() -> None:
    calls, operation = failing(1000)
    stop = threading.Event()
    stop.set()
    with pytest.raises(DatabaseUnavailableError):
        with_retries(operation, what="t", stop=stop)  # type: ignore[arg-type]
    assert len(calls) == 1
