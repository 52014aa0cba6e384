"""Errors raised by the event store, carrying the coordinates an operator needs."""

from __future__ import annotations


class EventStoreError(Exception):
    """Base of every error the event store raises."""


class DatabaseUnavailableError(EventStoreError):
    """PostgreSQL could not be reached, dropped the connection, or asked for a retry
    (shutdown, serialization failure, deadlock): waiting may heal it."""


class PermanentDatabaseError(EventStoreError):
    """A database error that retrying cannot heal: it names the SQL state and what to do.

    `str()` is the one line an operator reads: ``SQLSTATE 42883 (undefined_function): …``.
    """

    def __init__(self, explanation: str, *, sqlstate: str | None = None, condition: str | None = None,
                 message: str | None = None) -> None:
        self.explanation = explanation
        self.sqlstate = sqlstate
        self.condition = condition
        self.message = message
        code = f"SQLSTATE {sqlstate} ({condition})" if sqlstate else "database error"
        said = f": {message}" if message else ""
        super().__init__(f"{code}{said}. {explanation}")


class UnsupportedServerError(PermanentDatabaseError):
    """The PostgreSQL server is older than the oldest major version bo supports."""


class SchemaMismatchError(PermanentDatabaseError):
    """The database's migrations are behind or ahead of the code."""


class BrokerError(EventStoreError):
    """Kafka reported an error that is not a transient partition EOF."""

    def __init__(self, message: str, *, topic: str | None = None, partition: int | None = None):
        super().__init__(message)
        self.topic = topic
        self.partition = partition
