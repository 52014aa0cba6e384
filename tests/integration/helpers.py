"""Helpers for integration tests: appending sample messages straight into the log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg

from eventstore import log
from eventstore.ingest.decode import decode
from eventstore.records import KafkaCoordinates, LogRecord
from projections import registry
from projections.runner import SQL_ENGINE, ProjectionRunner
from projections.tracking import datastore_for

TOPIC_OF = {"LedgerEntryUpserted": "bo.ledger-entries.v1", "PaymentOrderUpserted": "bo.payment-orders.v1"}


def sample_records(path: Path, *, start_offset: int = 0) -> list[LogRecord]:
    records = []
    for offset, line in enumerate(path.read_text().splitlines(), start=start_offset):
        item = json.loads(line)
        coordinates = KafkaCoordinates(item["topic"], 0, offset, None)
        headers = [(k, v.encode()) for k, v in item["headers"].items()]
        records.append(decode(coordinates, item["key"].encode(), item["value"].encode(), headers))
    return records


def append_all(url: str, records: list[LogRecord], group: str = "test", batch: int = 1000) -> None:
    with psycopg.connect(url) as conn:
        for i in range(0, len(records), batch):
            log.append(conn, group, records[i : i + batch])


def runner(url: str, batch_size: int = 1000, engine: str = SQL_ENGINE) -> ProjectionRunner:
    """A runner of the versions the registry says run, as `bo project` builds it."""
    datastore = datastore_for(url)
    with datastore.transaction(commit=False) as cur:
        projectors = registry.running(cur)
    return ProjectionRunner(datastore, projectors, TOPIC_OF, batch_size=batch_size, engine=engine)


def rows(url: str, query: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    with psycopg.connect(url, row_factory=psycopg.rows.dict_row) as conn:
        return conn.execute(query, params).fetchall()  # type: ignore[arg-type]
