"""The log's hash chain: each row's SHA-256 over the previous row's hash and its own content.

    content_digest = SHA-256(source, topic, partition, offset, kafka_timestamp, source_file,
                             source_line, raw_key, raw_value, headers, value_size,
                             value_sha256, oversized)
    row_hash       = SHA-256(previous row_hash, position, ingested_at, content_digest)

Every field is encoded as 0x00 (absent) or 0x01, a 4-byte big-endian length and the
bytes; integers as 8-byte big-endian; times as microseconds since the Unix epoch; text as
UTF-8; headers as the exact JSON text stored. `bo.event_log_row_hash()` (migration 0002)
computes the same in SQL. Editing, deleting, inserting or reordering any row changes
every hash after it. The two steps let the appender digest a batch's content before it
takes the log lock, and chain it under the lock with one small hash per row.
"""

from __future__ import annotations

import hashlib
import struct
from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_ABSENT = b"\x00"
_INT_PREFIX = b"\x01\x00\x00\x00\x08"
_PACK_INT = struct.Struct(">q").pack
_PACK_LEN = struct.Struct(">I").pack
_TRUE, _FALSE = b"\x01\x00\x00\x00\x01\x01", b"\x01\x00\x00\x00\x01\x00"
_SOURCE_FIELD = {"kafka": b"\x01\x00\x00\x00\x05kafka", "backfill": b"\x01\x00\x00\x00\x08backfill"}


def content_digest(
    source: str,
    topic: str | None,
    partition: int | None,
    offset: int | None,
    kafka_timestamp: datetime | None,
    source_file: str | None,
    source_line: int | None,
    raw_key: bytes | None,
    raw_value: bytes | None,
    headers_json: str,
    value_size: int,
    value_sha256: bytes | None,
    oversized: bool,
) -> bytes:
    """The digest of one log row's content (derived columns are checked separately).

    Takes the fields as they are, in this order, and builds no intermediate object: ingest
    digests every message with it before taking the log lock.
    """
    return hashlib.sha256(b"".join((
        _SOURCE_FIELD.get(source) or text_field(source),
        text_field(topic),
        int_field(partition),
        int_field(offset),
        time_field(kafka_timestamp),
        text_field(source_file),
        int_field(source_line),
        field(raw_key),
        field(raw_value),
        text_field(headers_json),
        int_field(value_size),
        field(value_sha256),
        _TRUE if oversized else _FALSE,
    ))).digest()


def row_hash(previous: bytes | None, position: int, ingested_at_field: bytes, digest: bytes) -> bytes:
    """Chain one row; `ingested_at_field` is `time_field(ingested_at)` (one per batch)."""
    return hashlib.sha256(field(previous) + int_field(position) + ingested_at_field + digest).digest()


def field(part: bytes | None) -> bytes:
    if part is None:
        return _ABSENT
    return b"\x01" + _PACK_LEN(len(part)) + part


def int_field(value: int | None) -> bytes:
    return _ABSENT if value is None else _INT_PREFIX + _PACK_INT(value)


def text_field(value: str | None) -> bytes:
    if value is None:
        return _ABSENT
    encoded = value.encode("utf-8")
    return b"\x01" + _PACK_LEN(len(encoded)) + encoded


def time_field(value: datetime | None) -> bytes:
    return _ABSENT if value is None else int_field((value - EPOCH) // _MICROSECOND)
