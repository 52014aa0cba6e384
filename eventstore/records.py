"""The values that cross from ingest into the log: one `LogRecord` per message or dump line."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class KafkaCoordinates:
    topic: str
    partition: int
    offset: int
    timestamp: datetime | None


@dataclass(frozen=True, slots=True)
class LogRecord:
    """A message exactly as it arrived, plus the fields that could be read from it.

    `raw_key`, `raw_value` and `headers` are kept byte for byte; the readable fields
    are conveniences for indexes and queries and are None when they cannot be read.
    """

    coordinates: KafkaCoordinates
    raw_key: bytes | None
    raw_value: bytes | None
    headers: list[dict[str, str | None]]
    event_id: str | None
    event_type: str | None
    schema_version: int | None
    entity_id: str | None
    document: str | None
    traceparent: str | None
    correlation_id: str | None

    @property
    def value_size(self) -> int:
        return len(self.raw_value) if self.raw_value is not None else 0
