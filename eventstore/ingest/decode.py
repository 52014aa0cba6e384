"""Pure decoding of one Kafka message into a `LogRecord`: never raises, never drops.

A message that is not UTF-8, not JSON, or not an object is still a record: only the
readable columns stay empty. Numbers are parsed as Decimal so that nothing is rounded
on the way (the raw bytes stay the source of truth in any case).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from typing import Any

from eventstore import jsontext
from eventstore.records import Coordinates, LogRecord, headers_json

ENTITY_ID_FIELD = {"LedgerEntryUpserted": "tx_id", "PaymentOrderUpserted": "order_id"}
_MAX_ID = 256


DEFAULT_MAX_VALUE_BYTES = 1024 * 1024


def decode(
    coordinates: Coordinates,
    key: bytes | None,
    value: bytes | None,
    headers: Sequence[tuple[str, bytes | None]] | None,
    *,
    max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES,
) -> LogRecord:
    text_headers = [_header(name, raw) for name, raw in headers] if headers else []
    if value is not None and len(value) > max_value_bytes:
        return _stub(coordinates, key, value, text_headers)
    document, document_text = _parse_object(value)
    event_type = event_id = schema_version = entity_id = None
    if document is not None:
        event_type = _short_str(document.get("event_type"))
        event_id = _short_str(document.get("event_id"))
        schema_version = _int(document.get("schema_version"))
        entity_id = _entity_id(document, event_type)
    traceparent = correlation_id = None
    if text_headers:
        traceparent = _header_value(text_headers, "traceparent")
        correlation_id = _header_value(text_headers, "x-correlation-id")
    # Positional, in LogRecord's field order (the cheapest construction; ingest makes one per message).
    return LogRecord(
        coordinates, key, value, text_headers, event_id, event_type, schema_version,
        entity_id or _key_text(key), document_text, traceparent, correlation_id,
        len(value) if value is not None else 0, None, False, headers_json(text_headers),
    )


def _stub(coordinates: Coordinates, key: bytes | None, value: bytes,
          headers: list[dict[str, str | None]]) -> LogRecord:
    """A value over the limit: logged with its size and SHA-256, never silently dropped."""
    return LogRecord(
        coordinates=coordinates, raw_key=key, raw_value=None, headers=headers,
        event_id=None, event_type=None, schema_version=None, entity_id=_key_text(key),
        document=None, traceparent=_header_value(headers, "traceparent"),
        correlation_id=_header_value(headers, "x-correlation-id"),
        value_size=len(value), value_sha256=hashlib.sha256(value).digest(), oversized=True,
        headers_json=headers_json(headers),
    )


def _parse_object(value: bytes | None) -> tuple[dict[str, Any] | None, str | None]:
    """The value as a JSON object (or None), and its text if jsonb can store it."""
    if value is None:
        return None, None
    try:
        parsed = jsontext.parse_bytes(value)
    except (UnicodeDecodeError, ValueError):
        return None, None
    if not isinstance(parsed.value, dict):
        return None, None
    return parsed.value, value.decode("utf-8") if parsed.storable_as_jsonb else None


def _entity_id(document: dict[str, Any] | None, event_type: str | None) -> str | None:
    if not document or event_type not in ENTITY_ID_FIELD:
        return None
    payload = document.get("payload")
    if not isinstance(payload, dict):
        return None
    return _short_str(payload.get(ENTITY_ID_FIELD[event_type]))


def _short_str(value: object) -> str | None:
    if isinstance(value, str) and 0 < len(value) <= _MAX_ID and "\x00" not in value:
        return value
    return None


def _int(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and -(2**31) <= value < 2**31:
        return value
    return None


def _key_text(key: bytes | None) -> str | None:
    if key is None:
        return None
    try:
        return _short_str(key.decode("utf-8"))
    except UnicodeDecodeError:
        return None


def _header(name: str, raw: bytes | None) -> dict[str, str | None]:
    """A header as JSON: text when it is clean UTF-8, else base64 under `value_b64`."""
    if "\x00" in name:
        name = "b64:" + base64.b64encode(name.encode("utf-8")).decode("ascii")
    if raw is None:
        return {"key": name, "value": None}
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and "\x00" not in text:
        return {"key": name, "value": text}
    return {"key": name, "value_b64": base64.b64encode(raw).decode("ascii")}


def _header_value(headers: list[dict[str, str | None]], name: str) -> str | None:
    for header in headers:
        if (header.get("key") or "").lower() == name:
            return _short_str(header.get("value"))
    return None
