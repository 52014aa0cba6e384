"""Errors raised by the event store, carrying the coordinates an operator needs."""

from __future__ import annotations


class EventStoreError(Exception):
    """Base of every error the event store raises."""


class DatabaseUnavailableError(EventStoreError):
    """PostgreSQL could not be reached or dropped the connection; the caller may retry."""


class BrokerError(EventStoreError):
    """Kafka reported an error that is not a transient partition EOF."""

    def __init__(self, message: str, *, topic: str | None = None, partition: int | None = None):
        super().__init__(message)
        self.topic = topic
        self.partition = partition
