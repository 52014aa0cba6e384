"""The log's hash chain: each row's SHA-256 over the previous row's hash and its own content.

The canonical encoding is the one `bo.event_log_row_hash()` computes in SQL (migration
0002): every field in a fixed order as 0x00 (absent) or 0x01, a 4-byte big-endian length
and the bytes; integers as 8-byte big-endian; times as microseconds since the Unix epoch;
text as UTF-8; headers as the exact JSON text stored. Editing, deleting, inserting or
reordering any row changes every hash after it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class ChainedContent:
    """The hashed content of one log row (derived columns are checked separately)."""

    position: int
    source: str
    topic: str | None
    partition: int | None
    offset: int | None
    kafka_timestamp: datetime | None
    source_file: str | None
    source_line: int | None
    raw_key: bytes | None
    raw_value: bytes | None
    headers_json: str
    value_size: int
    value_sha256: bytes | None
    oversized: bool
    ingested_at: datetime


def row_hash(previous: bytes | None, row: ChainedContent) -> bytes:
    digest = hashlib.sha256()
    for part in (
        previous,
        _int(row.position),
        _text(row.source),
        _text(row.topic),
        _int(row.partition),
        _int(row.offset),
        _time(row.kafka_timestamp),
        _text(row.source_file),
        _int(row.source_line),
        row.raw_key,
        row.raw_value,
        _text(row.headers_json),
        _int(row.value_size),
        row.value_sha256,
        b"\x01" if row.oversized else b"\x00",
        _time(row.ingested_at),
    ):
        if part is None:
            digest.update(b"\x00")
        else:
            digest.update(b"\x01" + len(part).to_bytes(4, "big") + part)
    return digest.digest()


def _int(value: int | None) -> bytes | None:
    return None if value is None else value.to_bytes(8, "big", signed=True)


def _text(value: str | None) -> bytes | None:
    return None if value is None else value.encode("utf-8")


def _time(value: datetime | None) -> bytes | None:
    return None if value is None else _int((value - EPOCH) // _MICROSECOND)
