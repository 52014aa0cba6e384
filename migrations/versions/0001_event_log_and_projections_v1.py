"""The event log, ingest offsets, dead letters, the projector registry and version-1 read tables.

Why: this is bo's first schema. `bo.event_log` is the source of truth; everything else
is derived from it and can be rebuilt. The read tables are physical per projector
version (`*_v1`) and the stable names (`bo.ledger_entries`, ...) are views over the
active version, so that a cut-over is one `CREATE OR REPLACE VIEW` in a transaction.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE SCHEMA IF NOT EXISTS bo")

    # The log. `position` comes from the identity sequence; writers hold
    # LOCK TABLE ... IN EXCLUSIVE MODE while appending, so positions are issued and
    # committed in the same order and a reader at position P never later finds a row
    # below P (see eventstore/log.py).
    op.execute(
        """
        CREATE TABLE bo.event_log (
            position        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            source          text NOT NULL CHECK (source IN ('kafka', 'backfill')),
            topic           text,
            "partition"     integer,
            "offset"        bigint,
            kafka_timestamp timestamptz,
            source_file     text,
            source_line     bigint,
            raw_key         bytea,
            raw_value       bytea,
            headers         jsonb NOT NULL DEFAULT '[]'::jsonb,
            value_size      integer NOT NULL,
            ingested_at     timestamptz NOT NULL,
            event_id        text,
            event_type      text,
            schema_version  integer,
            entity_id       text,
            document        jsonb,
            traceparent     text,
            correlation_id  text,
            CONSTRAINT event_log_kafka_coordinates
                CHECK (source <> 'kafka' OR (topic IS NOT NULL AND "partition" IS NOT NULL
                                             AND "offset" IS NOT NULL)),
            CONSTRAINT event_log_backfill_coordinates
                CHECK (source <> 'backfill' OR (source_file IS NOT NULL AND source_line IS NOT NULL))
        )
        """
    )
    op.execute(
        'CREATE UNIQUE INDEX event_log_kafka_uq ON bo.event_log (topic, "partition", "offset")'
        " WHERE source = 'kafka'"
    )
    op.execute(
        "CREATE UNIQUE INDEX event_log_backfill_uq ON bo.event_log (source_file, source_line)"
        " WHERE source = 'backfill'"
    )
    op.execute("CREATE INDEX event_log_event_id_idx ON bo.event_log (event_id)")
    op.execute("CREATE INDEX event_log_entity_idx ON bo.event_log (entity_id, position)")

    # Consumer progress: the next offset to read per topic-partition, written in the
    # same transaction as the rows it covers.
    op.execute(
        """
        CREATE TABLE bo.ingest_offsets (
            consumer_group text NOT NULL,
            topic          text NOT NULL,
            "partition"    integer NOT NULL,
            next_offset    bigint NOT NULL CHECK (next_offset >= 0),
            updated_at     timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (consumer_group, topic, "partition")
        )
        """
    )

    # Projector registry: every declared version and its lifecycle status.
    op.execute(
        """
        CREATE TABLE bo.projectors (
            name        text NOT NULL,
            version     integer NOT NULL CHECK (version >= 1),
            status      text NOT NULL CHECK (status IN ('BUILDING', 'READY', 'ACTIVE', 'RETIRED')),
            created_at  timestamptz NOT NULL DEFAULT now(),
            activated_at timestamptz,
            PRIMARY KEY (name, version)
        )
        """
    )
    op.execute(
        "CREATE UNIQUE INDEX projectors_one_active ON bo.projectors (name) WHERE status = 'ACTIVE'"
    )

    # Checkpoints, in the shape of eventsourcing's single-row tracking table so that
    # its PostgresTrackingRecorder records and reads them (application_name is
    # 'name:vN'). The '__migration__' row tells the library the table is single-row.
    op.execute(
        """
        CREATE TABLE bo.projection_tracking (
            application_name text PRIMARY KEY,
            notification_id  bigint
        )
        """
    )
    op.execute(
        "INSERT INTO bo.projection_tracking (application_name, notification_id)"
        " VALUES ('__migration__', 1)"
    )

    op.execute(
        """
        CREATE TABLE bo.dead_letters (
            id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            projector         text NOT NULL,
            projector_version integer NOT NULL,
            position          bigint NOT NULL REFERENCES bo.event_log (position),
            event_id          text,
            reason            text NOT NULL CHECK (reason IN (
                                  'INVALID_JSON', 'SCHEMA_VIOLATION', 'UNKNOWN_EVENT_TYPE',
                                  'UNSUPPORTED_SCHEMA_VERSION', 'DUPLICATE_EVENT_ID_CONFLICT')),
            detail            text NOT NULL,
            status            text NOT NULL DEFAULT 'OPEN' CHECK (status IN ('OPEN', 'RESOLVED')),
            created_at        timestamptz NOT NULL DEFAULT now(),
            resolved_at       timestamptz,
            UNIQUE (projector, projector_version, position)
        )
        """
    )
    op.execute("CREATE INDEX dead_letters_reason_idx ON bo.dead_letters (reason, status)")

    for name in ("ledger_entries", "payment_orders", "payment_ledger_pairs"):
        # What each version did with each event it read: the projector's memory of
        # event ids (duplicates, conflicts) and the `fate` the history API shows.
        op.execute(
            f"""
            CREATE TABLE bo.{name}_v1_fates (
                position       bigint PRIMARY KEY,
                event_id       text,
                payload_sha256 bytea,
                fate           text NOT NULL CHECK (fate IN (
                                   'APPLIED', 'SUPERSEDED', 'DUPLICATE', 'DEAD_LETTERED'))
            )
            """
        )
        op.execute(
            f"CREATE UNIQUE INDEX {name}_v1_fates_event_id_uq ON bo.{name}_v1_fates (event_id)"
            " WHERE fate IN ('APPLIED', 'SUPERSEDED')"
        )

    op.execute(
        """
        CREATE TABLE bo.ledger_entries_v1 (
            tx_id               text PRIMARY KEY,
            wallet_id           text NOT NULL,
            entry_type          text NOT NULL,
            amount              numeric NOT NULL,
            currency            text NOT NULL,
            status              text NOT NULL,
            status_group        text NOT NULL,
            related_id          text,
            related_type        text NOT NULL,
            created_at          timestamptz,
            updated_at          timestamptz,
            version             bigint,
            booked_at           timestamptz NOT NULL,
            event_id            text NOT NULL,
            ingested_at         timestamptz NOT NULL,
            position            bigint NOT NULL,
            version_missing_cnt integer NOT NULL DEFAULT 0,
            projector_version   integer NOT NULL
        )
        """
    )
    op.execute(
        "CREATE INDEX ledger_entries_v1_wallet_idx"
        " ON bo.ledger_entries_v1 (wallet_id, booked_at DESC, tx_id DESC)"
    )
    op.execute("CREATE INDEX ledger_entries_v1_related_idx ON bo.ledger_entries_v1 (related_id)")

    op.execute(
        """
        CREATE TABLE bo.payment_orders_v1 (
            order_id              text PRIMARY KEY,
            wallet_id             text NOT NULL,
            merchant_id           text,
            amount                numeric NOT NULL,
            currency              text NOT NULL,
            status                text NOT NULL,
            status_group          text NOT NULL,
            payment_method        text,
            payer_name_masked     text,
            payer_email_masked    text,
            payer_phone_masked    text,
            account_number_masked text,
            created_at            timestamptz,
            updated_at            timestamptz,
            version               bigint,
            event_id              text NOT NULL,
            ingested_at           timestamptz NOT NULL,
            position              bigint NOT NULL,
            version_missing_cnt   integer NOT NULL DEFAULT 0,
            projector_version     integer NOT NULL
        )
        """
    )

    # The pairing projector's own newest-wins copy of what it needs from each member.
    op.execute(
        """
        CREATE TABLE bo.payment_ledger_pairs_v1_members (
            kind            text NOT NULL CHECK (kind IN ('ORDER', 'LEDGER')),
            entity_id       text NOT NULL,
            order_ref       text,
            entry_type      text,
            amount          numeric NOT NULL,
            currency        text NOT NULL,
            version         bigint,
            updated_at      timestamptz,
            ingested_at     timestamptz NOT NULL,
            position        bigint NOT NULL,
            first_seen_at   timestamptz NOT NULL,
            PRIMARY KEY (kind, entity_id)
        )
        """
    )
    op.execute(
        "CREATE INDEX payment_ledger_pairs_v1_members_ref_idx"
        " ON bo.payment_ledger_pairs_v1_members (order_ref)"
    )
    op.execute(
        """
        CREATE TABLE bo.payment_ledger_pairs_v1 (
            order_id          text PRIMARY KEY,
            order_present     boolean NOT NULL,
            debit_tx_id       text,
            credit_tx_id      text,
            pairing_status    text NOT NULL CHECK (pairing_status IN ('COMPLETE', 'MISMATCH', 'PARTIAL')),
            missing           text[] NOT NULL,
            first_seen_at     timestamptz NOT NULL,
            completed_at      timestamptz,
            position          bigint NOT NULL,
            projector_version integer NOT NULL
        )
        """
    )
    op.execute(
        "CREATE INDEX payment_ledger_pairs_v1_status_idx ON bo.payment_ledger_pairs_v1 (pairing_status)"
    )

    for name in ("ledger_entries", "payment_orders", "payment_ledger_pairs"):
        op.execute(f"CREATE VIEW bo.{name} AS SELECT * FROM bo.{name}_v1")
        op.execute(
            f"INSERT INTO bo.projectors (name, version, status, activated_at)"
            f" VALUES ('{name}', 1, 'ACTIVE', now())"
        )


def downgrade() -> None:
    for name in ("ledger_entries", "payment_orders", "payment_ledger_pairs"):
        op.execute(f"DROP VIEW IF EXISTS bo.{name}")
        op.execute(f"DROP TABLE IF EXISTS bo.{name}_v1_fates")
    op.execute("DROP TABLE IF EXISTS bo.payment_ledger_pairs_v1")
    op.execute("DROP TABLE IF EXISTS bo.payment_ledger_pairs_v1_members")
    op.execute("DROP TABLE IF EXISTS bo.payment_orders_v1")
    op.execute("DROP TABLE IF EXISTS bo.ledger_entries_v1")
    op.execute("DROP TABLE IF EXISTS bo.dead_letters")
    op.execute("DROP TABLE IF EXISTS bo.projection_tracking")
    op.execute("DROP TABLE IF EXISTS bo.projectors")
    op.execute("DROP TABLE IF EXISTS bo.ingest_offsets")
    op.execute("DROP TABLE IF EXISTS bo.event_log")
    op.execute("DROP SCHEMA IF EXISTS bo")
