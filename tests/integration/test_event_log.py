"""Appending to the log: exactly once per offset, offsets in the same transaction, order kept."""

from __future__ import annotations

import itertools
import threading

import psycopg

from eventstore import log
from eventstore.ingest.decode import decode
from eventstore.records import KafkaCoordinates
from tests.conftest import SAMPLES
from tests.integration.helpers import rows, sample_records


def test_redelivered_batch_is_not_appended_twice(database_url: str) -> None:
    records = sample_records(SAMPLES)
    with psycopg.connect(database_url) as conn:
        first = log.append(conn, "g-redeliver", records[:10])
        again = log.append(conn, "g-redeliver", records[:12])
    assert (first.appended, first.redelivered) == (10, 0)
    assert (again.appended, again.redelivered) == (2, 10)
    logged = rows(database_url, 'SELECT "offset" FROM bo.event_log WHERE topic IS NOT NULL ORDER BY position')
    assert [r["offset"] for r in logged] == list(range(12))


def test_next_offsets_are_stored_with_the_rows(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        offsets = log.next_offsets(conn, "g-redeliver", ["bo.ledger-entries.v1", "bo.payment-orders.v1"])
    # sample_records puts every message on partition 0 of its topic, offsets = line numbers
    assert offsets[("bo.ledger-entries.v1", 0)] == 12  # last ledger line is offset 11
    assert offsets[("bo.payment-orders.v1", 0)] == 7  # last order line is offset 6


def test_rows_keep_raw_bytes_headers_and_readable_columns(database_url: str) -> None:
    got = rows(database_url, "SELECT * FROM bo.event_log WHERE event_id = 'e-002'")[0]
    assert bytes(got["raw_key"]) == b"ord-1"
    assert b'"payer_name": "Kim Minji"' in bytes(got["raw_value"])
    assert got["traceparent"] == "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    assert got["correlation_id"] == "corr-e-002"
    assert {"key": "x-correlation-id", "value": "corr-e-002"} in got["headers"]
    assert (got["event_type"], got["entity_id"], got["schema_version"]) == (
        "PaymentOrderUpserted", "ord-1", 1)
    assert got["value_size"] == len(bytes(got["raw_value"]))


def test_a_reader_never_finds_a_position_below_one_it_has_read(database_url: str) -> None:
    """Concurrent appenders, one tailing reader: every row must be seen by tailing alone."""
    writers, batches, per_batch = 3, 150, 4
    done = threading.Event()
    seen: list[int] = []

    def write(partition: int) -> None:
        with psycopg.connect(database_url) as conn:
            for b in range(batches):
                records = [
                    decode(KafkaCoordinates("concurrent", partition, b * per_batch + i, None), None, b"{}", None)
                    for i in range(per_batch)
                ]
                log.append(conn, "g-concurrent", records)

    def tail() -> None:
        high_water = 0
        with psycopg.connect(database_url, autocommit=True) as conn:
            while True:
                finished = done.is_set()
                found = [r[0] for r in conn.execute(
                    "SELECT position FROM bo.event_log WHERE topic = 'concurrent' AND position > %s"
                    " ORDER BY position", (high_water,))]
                seen.extend(found)
                high_water = max([high_water, *found])
                if finished:
                    return

    reader = threading.Thread(target=tail)
    reader.start()
    threads = [threading.Thread(target=write, args=(p,)) for p in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    reader.join()
    logged = [r["position"] for r in rows(
        database_url, "SELECT position FROM bo.event_log WHERE topic = 'concurrent' ORDER BY position")]
    assert len(logged) == writers * batches * per_batch
    assert seen == logged, "a row became visible below a position the reader had already passed"


def test_ingested_at_never_decreases_as_position_increases(database_url: str) -> None:
    logged = rows(database_url, "SELECT position, ingested_at FROM bo.event_log ORDER BY position")
    assert len(logged) > 600
    assert all(a["ingested_at"] <= b["ingested_at"] for a, b in itertools.pairwise(logged))
