"""The values that cross from ingest (or backfill) into the log: one `LogRecord` per message or dump line."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

import orjson

# Named tuples, not frozen dataclasses: as immutable, and built several times faster (a frozen
# dataclass sets each field through object.__setattr__). Ingest builds one record and one set
# of coordinates per message, and those constructions were 15 % of its CPU (docs/performance.md).


class KafkaCoordinates(NamedTuple):
    topic: str
    partition: int
    offset: int
    timestamp: datetime | None

    @property
    def stream(self) -> tuple[str, int]:
        """The fencing key: progress is stored per topic-partition."""
        return (self.topic, self.partition)

    @property
    def sequence(self) -> int:
        return self.offset


class FileCoordinates(NamedTuple):
    """A line of a backfill dump. `file` is the dump's identity (name and content digest)."""

    file: str
    line: int

    @property
    def stream(self) -> tuple[str, int]:
        return (self.file, 0)

    @property
    def sequence(self) -> int:
        return self.line


Coordinates = KafkaCoordinates | FileCoordinates


class LogRecord(NamedTuple):
    """A message exactly as it arrived, plus the fields that could be read from it.

    `raw_key`, `raw_value` and `headers` are kept byte for byte; the readable fields
    are conveniences for indexes and queries and are None when they cannot be read.
    A value over the size limit is a stub: `raw_value` is None, `oversized` is set and
    `value_size` and `value_sha256` describe what arrived.
    """

    coordinates: Coordinates
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
    value_size: int = 0
    value_sha256: bytes | None = None
    oversized: bool = False
    headers_json: str = "[]"  # the exact JSON text stored (and hashed) for `headers`


def headers_json(headers: list[dict[str, str | None]]) -> str:
    return orjson.dumps(headers).decode("utf-8") if headers else "[]"
