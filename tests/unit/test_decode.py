"""Decoding a Kafka message never raises and never loses bytes."""

from __future__ import annotations

from eventstore.ingest.decode import decode
from eventstore.records import KafkaCoordinates

AT = KafkaCoordinates("t", 0, 5, None)


def test_valid_envelope_gives_readable_columns() -> None:
    value = (b'{"event_id": "e-1", "event_type": "LedgerEntryUpserted", "schema_version": 1,'
             b' "payload": {"tx_id": "tx-1", "amount": 12500.00}}')
    record = decode(AT, b"tx-1", value, [("traceparent", b"00-" + b"a" * 32 + b"-" + b"b" * 16 + b"-01")])
    assert (record.event_id, record.event_type, record.schema_version, record.entity_id) == (
        "e-1", "LedgerEntryUpserted", 1, "tx-1")
    assert record.raw_value == value
    assert record.document == value.decode()
    assert record.traceparent is not None


def test_not_json_is_kept_raw_with_the_key_as_entity() -> None:
    record = decode(AT, b"tx-bad-1", b"{not json", None)
    assert record.raw_value == b"{not json"
    assert (record.event_id, record.event_type, record.document) == (None, None, None)
    assert record.entity_id == "tx-bad-1"


def test_binary_value_and_headers_are_kept_byte_for_byte() -> None:
    raw = bytes(range(256))
    record = decode(AT, b"\xff\xfe", raw, [("bin", b"\x00\xff"), ("none", None)])
    assert record.raw_value == raw and record.raw_key == b"\xff\xfe"
    assert record.entity_id is None
    assert record.headers == [{"key": "bin", "value_b64": "AP8="}, {"key": "none", "value": None}]


def test_json_with_nul_escape_is_logged_without_a_document() -> None:
    value = b'{"event_id": "e-1", "event_type": "X", "payload": {"note": "\\u0000"}}'
    record = decode(AT, None, value, None)
    assert record.document is None
    assert record.event_id == "e-1"


def test_non_object_json_has_no_readable_fields() -> None:
    record = decode(AT, b"k", b"[1, 2]", None)
    assert (record.event_id, record.document, record.entity_id) == (None, None, "k")


def test_a_kafka_timestamp_no_datetime_can_hold_is_dropped_not_fatal() -> None:
    from eventstore.ingest.consumer import _kafka_time

    assert _kafka_time(1_700_000_000_000) is not None
    assert _kafka_time(2**62) is None
    assert _kafka_time(-1) is None
