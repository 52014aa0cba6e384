"""Building the long-running parts (ingest consumer, projection runner) from settings."""

from __future__ import annotations

import logging
import threading

from eventsourcing.persistence import InterfaceError, OperationalError
from eventsourcing.postgres import PostgresDatastore

from bo.settings import Settings
from eventstore.ingest.consumer import IngestConfig, IngestConsumer
from projections import registry
from projections.runner import ProjectionRunner
from projections.tracking import datastore_for

log = logging.getLogger(__name__)


def topic_of(settings: Settings) -> dict[str, str]:
    return {"LedgerEntryUpserted": settings.topic_ledger, "PaymentOrderUpserted": settings.topic_orders}


def ingest_consumer(settings: Settings, url: str, bootstrap: str, group_id: str | None = None
                    ) -> IngestConsumer:
    return IngestConsumer(IngestConfig(
        database_url=url,
        bootstrap_servers=bootstrap,
        group_id=group_id or settings.kafka_group_id,
        topics=settings.topics,
        batch_size=settings.ingest_batch_size,
        session_timeout_ms=settings.kafka_session_timeout_ms,
        max_message_bytes=settings.max_message_bytes,
        group_instance_id=settings.kafka_group_instance_id,
    ))


def projection_runner(settings: Settings, url: str, stop: threading.Event | None = None
                      ) -> tuple[ProjectionRunner, PostgresDatastore]:
    """The runner for the versions registered as running; waits (capped backoff) for the database."""
    stop = stop or threading.Event()
    datastore = datastore_for(url)
    delay = 0.2
    while True:  # the database may not be up yet when the process starts
        try:
            with datastore.transaction(commit=False) as cur:
                projectors = registry.running(cur)
            break
        except (OperationalError, InterfaceError) as exc:
            if stop.is_set():
                raise
            log.warning("database unavailable, retrying", extra={"what": "load projectors", "retry_in_s": delay,
                                                                 "error": str(exc).splitlines()[0] if str(exc) else ""})
            stop.wait(delay)
            delay = min(delay * 2, 10.0)
    runner = ProjectionRunner(datastore, projectors, topic_of(settings),
                              batch_size=settings.project_batch_size)
    return runner, datastore
