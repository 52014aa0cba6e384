"""Building the long-running parts (ingest consumer, projection runner) from settings."""

from __future__ import annotations

from eventsourcing.postgres import PostgresDatastore

from bo.settings import Settings
from eventstore.ingest.consumer import IngestConfig, IngestConsumer
from projections import registry
from projections.runner import ProjectionRunner
from projections.tracking import datastore_for


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
    ))


def projection_runner(settings: Settings, url: str) -> tuple[ProjectionRunner, PostgresDatastore]:
    datastore = datastore_for(url)
    with datastore.transaction(commit=False) as cur:
        projectors = registry.running(cur)
    runner = ProjectionRunner(datastore, projectors, topic_of(settings),
                              batch_size=settings.project_batch_size)
    return runner, datastore
