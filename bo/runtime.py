"""Building the long-running parts (ingest consumer, projection runner) from settings."""

from __future__ import annotations

import threading

from eventsourcing.postgres import PostgresDatastore

from bo.entra import kafka_client_settings
from bo.migrate import schema_expectation
from bo.settings import Settings
from eventstore import db
from eventstore.health import Health
from eventstore.ingest.consumer import IngestConfig, IngestConsumer
from eventstore.ingest.metrics import IngestMetrics
from projections import registry
from projections.metrics import ProjectorMetrics
from projections.projector import Projector
from projections.runner import ProjectionRunner
from projections.tracking import datastore_for


def topic_of(settings: Settings) -> dict[str, str]:
    return {"LedgerEntryUpserted": settings.topic_ledger, "PaymentOrderUpserted": settings.topic_orders}


def ingest_consumer(settings: Settings, url: str, bootstrap: str, group_id: str | None = None,
                    health: Health | None = None, metrics: IngestMetrics | None = None) -> IngestConsumer:
    return IngestConsumer(IngestConfig(
        database_url=url,
        bootstrap_servers=bootstrap,
        group_id=group_id or settings.kafka_group_id,
        topics=settings.topics,
        batch_size=settings.ingest_batch_size,
        session_timeout_ms=settings.kafka_session_timeout_ms,
        max_message_bytes=settings.max_message_bytes,
        group_instance_id=settings.kafka_group_instance_id,
        client_settings=kafka_client_settings(settings, producer=False),
    ), health, metrics)


def projection_runner(settings: Settings, url: str, stop: threading.Event | None = None,
                      health: Health | None = None, metrics: ProjectorMetrics | None = None
                      ) -> tuple[ProjectionRunner, PostgresDatastore]:
    """The runner for the versions registered as running; waits (capped backoff) for the database."""
    # A connection per lane (never more lanes than read models), and one.
    lanes = min(settings.project_lanes, len(registry.NAMES))
    datastore = datastore_for(url, pool_size=lanes + 1)

    def running() -> list[Projector]:
        with datastore.transaction(commit=False) as cur:
            return registry.running(cur)

    projectors = db.with_retries(running, what="load projectors", stop=stop, health=health)
    runner = ProjectionRunner(datastore, projectors, topic_of(settings),
                              batch_size=settings.project_batch_size, health=health, metrics=metrics,
                              lanes=settings.project_lanes)
    return runner, datastore


def preflight(url: str, stop: threading.Event | None = None, health: Health | None = None) -> None:
    """The start of every long-running command: a supported server, migrated by this code."""
    db.preflight(url, schema_expectation(), stop=stop, health=health)
