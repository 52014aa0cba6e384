"""Connections to PostgreSQL: pools, one place to translate psycopg errors, capped backoff."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import psycopg
from psycopg_pool import ConnectionPool

from eventstore.errors import DatabaseUnavailableError

log = logging.getLogger(__name__)
T = TypeVar("T")


def connect(url: str, *, autocommit: bool = False) -> psycopg.Connection[tuple[Any, ...]]:
    try:
        return psycopg.connect(url, autocommit=autocommit, connect_timeout=5)
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailableError(str(exc)) from exc


READER_OPTIONS = "-c max_parallel_workers_per_gather=0 -c jit=off"


def open_pool(url: str, *, min_size: int = 1, max_size: int = 4, name: str = "bo") -> ConnectionPool:
    """A pool for readers (the API) that opens its connections lazily; open it inside the process
    that uses it. Connections are in autocommit: every request only reads, each statement sees a
    committed snapshot, and no BEGIN/COMMIT round trips are spent. A connection is checked when it
    is taken from the pool, so a database restart costs no failed request. Look-ups never start
    parallel workers or JIT compilation: both cost milliseconds a single-row answer never wins back."""
    pool = ConnectionPool(
        url, min_size=min_size, max_size=max_size, open=False, name=name,
        kwargs={"connect_timeout": 5, "autocommit": True, "options": READER_OPTIONS},
        check=ConnectionPool.check_connection,
    )
    pool.open(wait=False)
    return pool


@contextlib.contextmanager
def translated_errors() -> Iterator[None]:
    """Turn psycopg's connection-level failures into `DatabaseUnavailableError`."""
    try:
        yield
    except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
        raise DatabaseUnavailableError(str(exc)) from exc


def with_retries(
    operation: Callable[[], T],
    *,
    what: str,
    max_delay: float = 10.0,
    attempts: int | None = None,
    stop: threading.Event | None = None,
    sleep: Callable[[float], None] = time.sleep,
    on_unavailable: Callable[[str], None] | None = None,
) -> T:
    """Run `operation`, retrying `DatabaseUnavailableError` with capped exponential backoff.

    Gives up (re-raising) after `attempts`, or as soon as `stop` is set: a process asked
    to stop during an outage stops instead of retrying forever.
    """
    delay, tried = 0.2, 0
    while True:
        try:
            return operation()
        except DatabaseUnavailableError as exc:
            tried += 1
            if (attempts is not None and tried >= attempts) or (stop is not None and stop.is_set()):
                raise
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            log.warning("database unavailable, retrying", extra={"what": what, "retry_in_s": delay, "error": reason})
            if on_unavailable is not None:
                on_unavailable(reason)
            if stop is not None:
                stop.wait(delay)
            else:
                sleep(delay)
            delay = min(delay * 2, max_delay)
