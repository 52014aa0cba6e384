"""Large, binary and oddly-headed messages are logged intact; one over the limit becomes a stub row."""

from __future__ import annotations

import hashlib
import json
import threading

from confluent_kafka import Producer

from bo.embedded import DevBroker
from eventstore.ingest.consumer import IngestConfig, IngestConsumer
from projections.registry import DECLARED
from projections.runner import ProjectionRunner
from projections.tracking import datastore_for
from tests.conftest import random_ref
from tests.integration.helpers import rows

LIMIT = 1024 * 1024


def test_large_binary_and_odd_messages_are_kept_and_oversized_ones_stubbed(database_url: str, broker: DevBroker) -> None:
    topic = random_ref("odd")
    big_payload = {"tx_id": "tx-big", "wallet_id": "w", "entry_type": "DEBIT", "amount": "1", "currency": "KRW",
                   "status": "POSTED", "memo": "x" * (LIMIT - 400)}
    big = json.dumps({"event_id": "big-1", "event_type": "LedgerEntryUpserted", "payload": big_payload}).encode()
    assert len(big) <= LIMIT
    binary = bytes(range(256)) * 4
    too_big = b"y" * (LIMIT + 1)
    producer = Producer({"bootstrap.servers": broker.bootstrap, "message.max.bytes": 4 * LIMIT, "log_level": 3})
    producer.produce(topic, key=b"tx-big", value=big, partition=0)
    producer.produce(topic, key=b"\xff\x00key", value=binary, partition=0,
                     headers=[("dup", b"1"), ("dup", b"2"), ("", b"empty name"), ("bin", b"\xfe\xff"), ("null", None)])
    producer.produce(topic, key=b"tx-huge", value=too_big, partition=0)
    producer.produce(topic, key=None, value=None, partition=0)  # a tombstone
    assert producer.flush(30) == 0

    consumer = IngestConsumer(IngestConfig(database_url, broker.bootstrap, random_ref("g"), (topic,),
                                           session_timeout_ms=6000, max_message_bytes=LIMIT))
    stats = consumer.run(threading.Event(), idle_exit_s=2.0)
    assert (stats.appended, stats.oversized) == (4, 1)

    logged = rows(database_url, """SELECT raw_key, raw_value, headers, value_size, value_sha256, oversized, event_id
                                     FROM bo.event_log WHERE topic = %(t)s ORDER BY "offset" """, {"t": topic})
    assert bytes(logged[0]["raw_value"]) == big and logged[0]["event_id"] == "big-1"
    assert bytes(logged[1]["raw_value"]) == binary and bytes(logged[1]["raw_key"]) == b"\xff\x00key"
    assert logged[1]["headers"] == [
        {"key": "dup", "value": "1"}, {"key": "dup", "value": "2"}, {"key": "", "value": "empty name"},
        {"key": "bin", "value_b64": "/v8="}, {"key": "null", "value": None}]
    stub = logged[2]
    assert (stub["raw_value"], stub["oversized"], stub["value_size"]) == (None, True, LIMIT + 1)
    assert bytes(stub["value_sha256"]) == hashlib.sha256(too_big).digest()
    assert (logged[3]["raw_value"], logged[3]["value_size"]) == (None, 0)

    topic_of = {"LedgerEntryUpserted": topic, "PaymentOrderUpserted": random_ref("unused")}
    ProjectionRunner(datastore_for(database_url), [c() for c in DECLARED if c.version == 1], topic_of).catch_up()
    assert rows(database_url, "SELECT tx_id FROM bo.ledger_entries WHERE tx_id = 'tx-big'") == [{"tx_id": "tx-big"}]
    details = [r["detail"] for r in rows(database_url, """
        SELECT d.detail FROM bo.dead_letters d JOIN bo.event_log l USING (position)
         WHERE l.topic = %(t)s AND d.projector = 'ledger_entries' ORDER BY l."offset" """, {"t": topic})]
    assert len(details) == 3 and "over the size limit" in details[1]
