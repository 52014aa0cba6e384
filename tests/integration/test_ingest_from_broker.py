"""`bo ingest`'s loop against a real Kafka-protocol broker: resumes from the database, never twice."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import psycopg
import pytest
from confluent_kafka import Consumer, TopicPartition

from bo.embedded import DevBroker
from bo.generate import StreamShape, generate
from bo.publish import publish, read_messages, topic_map
from eventstore.errors import BrokerError
from eventstore.ingest.consumer import IngestConfig, IngestConsumer
from tests.conftest import SAMPLES, random_ref
from tests.integration.helpers import rows


def ingest_until_idle(url: str, broker: DevBroker, group: str, topics: tuple[str, str]) -> int:
    consumer = IngestConsumer(IngestConfig(url, broker.bootstrap, group, topics, batch_size=7,
                                            session_timeout_ms=6000))
    return consumer.run(threading.Event(), idle_exit_s=2.0).appended


def logged_coordinates(url: str, topics: tuple[str, str]) -> list[tuple[str, int, int]]:
    found = rows(url, 'SELECT topic, "partition", "offset" FROM bo.event_log WHERE topic = ANY(%(t)s)',
                 {"t": list(topics)})
    return [(r["topic"], r["partition"], r["offset"]) for r in found]


def rewind_kafka_offsets(broker: DevBroker, group: str, topics: tuple[str, str]) -> None:
    """Make Kafka's committed offsets claim nothing was read, as after a crash before the Kafka commit."""
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group, "log_level": 3,
                         "enable.auto.commit": False, "session.timeout.ms": 6000})
    consumer.subscribe(list(topics))
    deadline = time.monotonic() + 30
    while not consumer.assignment() and time.monotonic() < deadline:
        consumer.poll(0.2)
    consumer.commit(offsets=[TopicPartition(t, p, 0) for t in topics for p in range(4)], asynchronous=False)
    committed = consumer.committed([TopicPartition(t, p) for t in topics for p in range(4)], timeout=10)
    assert all(tp.offset == 0 for tp in committed)
    consumer.close()


def test_restart_resumes_where_the_database_says(database_url: str, broker: DevBroker,
                                                 topics: tuple[str, str]) -> None:
    group = random_ref("group")
    sent = publish(broker.bootstrap, read_messages(SAMPLES, topic_map(topics)))
    assert ingest_until_idle(database_url, broker, group, topics) == sent

    more = list(generate(StreamShape(payments=5, seed=1), *topics))
    publish(broker.bootstrap, iter(more))
    rewind_kafka_offsets(broker, group, topics)
    assert ingest_until_idle(database_url, broker, group, topics) == len(more)

    coordinates = logged_coordinates(database_url, topics)
    assert len(coordinates) == sent + len(more)
    assert len(set(coordinates)) == len(coordinates)
    offsets = rows(database_url, """SELECT topic, "partition", next_offset FROM bo.ingest_offsets
                                    WHERE consumer_group = %(g)s""", {"g": group})
    for o in offsets:
        highest = max(off for t, p, off in coordinates if (t, p) == (o["topic"], o["partition"]))
        assert o["next_offset"] == highest + 1


def test_stored_offset_beyond_the_partition_end_stops_ingest(database_url: str, broker: DevBroker,
                                                             topics: tuple[str, str]) -> None:
    group = random_ref("group")
    publish(broker.bootstrap, read_messages(SAMPLES, topic_map(topics)))
    with psycopg.connect(database_url) as conn:
        conn.execute("""INSERT INTO bo.ingest_offsets (consumer_group, topic, "partition", next_offset)
                        SELECT %(g)s, t, p, 1000 FROM unnest(%(t)s::text[]) t, generate_series(0, 3) p""",
                     {"g": group, "t": list(topics)})
    with pytest.raises(BrokerError, match="beyond the end"):
        ingest_until_idle(database_url, broker, group, topics)
    assert logged_coordinates(database_url, topics) == []


def test_publish_rejects_a_malformed_line_naming_it(tmp_path: Path, broker: DevBroker) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"topic": "t", "key": "k", "value": "{}"}\nnot json\n')
    from bo.publish import BadLineError

    with pytest.raises(BadLineError, match=r"bad\.jsonl:2"):
        publish(broker.bootstrap, read_messages(bad, {}))
