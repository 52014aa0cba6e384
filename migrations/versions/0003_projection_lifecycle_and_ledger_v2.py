"""Projection lifecycle (registry timings, fingerprint), registry-gated views, ledger_entries v2.

Why:
- A rebuild builds a version into its own tables while the active one serves; the
  registry records when it started, when it caught up, when it was (de)activated or
  retired, and a fingerprint of the code that built it.
- The stable names (`bo.ledger_entries`, ...) become views over *every* version, each
  branch gated by the registry: `WHERE <branch version> = (SELECT version ... ACTIVE)`.
  PostgreSQL evaluates that sub-select once per statement (an InitPlan) and skips the
  inactive branches, so a look-up still uses one version's index. A cut-over is then a
  plain UPDATE of `bo.projectors` in one transaction: no DDL, no lock on the view, and
  a reader's statement sees one snapshot, so it reads the old version or the new one,
  never a mix and never an error. The columns of a view are the union of its versions'
  (a version without a column gives NULL), so they never change on activation.
- `ledger_entries` v2 (the worked example of a schema change) adds `amount_minor`, the
  amount in integer minor units by ISO 4217 exponent. Its tables are made here; the
  version is registered (BUILDING) by `bo rebuild ledger_entries --version 2`.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

LEDGER_COLUMNS_V1 = (
    "tx_id, wallet_id, entry_type, amount, currency, status, status_group, related_id, related_type,"
    " created_at, updated_at, version, booked_at, event_id, ingested_at, position, version_missing_cnt,"
    " projector_version"
)


def _active(name: str) -> str:
    return f"(SELECT p.version FROM bo.projectors p WHERE p.name = '{name}' AND p.status = 'ACTIVE')"


def _gated_views() -> None:
    op.execute(f"""
        CREATE VIEW bo.ledger_entries AS
        SELECT {LEDGER_COLUMNS_V1}, NULL::bigint AS amount_minor
          FROM bo.ledger_entries_v1 WHERE 1 = {_active('ledger_entries')}
        UNION ALL
        SELECT {LEDGER_COLUMNS_V1}, amount_minor
          FROM bo.ledger_entries_v2 WHERE 2 = {_active('ledger_entries')}
    """)
    op.execute(f"""
        CREATE VIEW bo.payment_orders AS
        SELECT * FROM bo.payment_orders_v1 WHERE 1 = {_active('payment_orders')}
    """)
    op.execute(f"""
        CREATE VIEW bo.payment_ledger_pairs AS
        SELECT * FROM bo.payment_ledger_pairs_v1 WHERE 1 = {_active('payment_ledger_pairs')}
    """)
    for view in ("ledger_entries", "payment_orders", "payment_ledger_pairs"):
        op.execute(f"GRANT SELECT ON bo.{view} TO bo_app")


def upgrade() -> None:
    op.execute("""
        ALTER TABLE bo.projectors
            ADD COLUMN fingerprint      text,
            ADD COLUMN build_started_at timestamptz,
            ADD COLUMN built_at         timestamptz,
            ADD COLUMN deactivated_at   timestamptz,
            ADD COLUMN retired_at       timestamptz
    """)
    op.execute("UPDATE bo.projectors SET build_started_at = created_at, built_at = created_at")

    op.execute("""
        CREATE TABLE bo.ledger_entries_v2 (
            tx_id               text PRIMARY KEY,
            wallet_id           text NOT NULL,
            entry_type          text NOT NULL,
            amount              numeric NOT NULL,
            amount_minor        bigint,
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
    """)
    op.execute(
        "CREATE INDEX ledger_entries_v2_wallet_idx ON bo.ledger_entries_v2 (wallet_id, booked_at DESC, tx_id DESC)"
    )
    op.execute("CREATE INDEX ledger_entries_v2_related_idx ON bo.ledger_entries_v2 (related_id)")
    op.execute("""
        CREATE TABLE bo.ledger_entries_v2_fates (
            position       bigint PRIMARY KEY,
            event_id       text,
            payload_sha256 bytea,
            fate           text NOT NULL CHECK (fate IN ('APPLIED', 'SUPERSEDED', 'DUPLICATE', 'DEAD_LETTERED'))
        )
    """)
    op.execute(
        "CREATE UNIQUE INDEX ledger_entries_v2_fates_event_id_uq ON bo.ledger_entries_v2_fates (event_id)"
        " WHERE fate IN ('APPLIED', 'SUPERSEDED')"
    )
    for table in ("ledger_entries_v2", "ledger_entries_v2_fates"):
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON bo.{table} TO bo_app")

    for view in ("ledger_entries", "payment_orders", "payment_ledger_pairs"):
        op.execute(f"DROP VIEW bo.{view}")
    _gated_views()

    # The set-based projection engine works in temporary tables (projections/batch.py):
    # granted explicitly, so that revoking TEMP from PUBLIC (a common hardening) keeps it working.
    op.execute("DO $$ BEGIN EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO bo_app', current_database()); END $$")


def downgrade() -> None:
    op.execute("DO $$ BEGIN EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM bo_app', current_database()); END $$")
    for view in ("ledger_entries", "payment_orders", "payment_ledger_pairs"):
        op.execute(f"DROP VIEW bo.{view}")
    op.execute("DELETE FROM bo.dead_letters WHERE projector = 'ledger_entries' AND projector_version = 2")
    op.execute("DELETE FROM bo.projection_tracking WHERE application_name = 'ledger_entries:v2'")
    op.execute("DELETE FROM bo.projectors WHERE name = 'ledger_entries' AND version = 2")
    # Before 0003 only ACTIVE and BUILDING existed for a running version: v1 serves again.
    op.execute("UPDATE bo.projectors SET status = 'ACTIVE' WHERE version = 1 AND status = 'READY'"
               " AND NOT EXISTS (SELECT 1 FROM bo.projectors a WHERE a.name = projectors.name AND a.status = 'ACTIVE')")
    op.execute("DROP TABLE bo.ledger_entries_v2_fates")
    op.execute("DROP TABLE bo.ledger_entries_v2")
    for name in ("ledger_entries", "payment_orders", "payment_ledger_pairs"):
        op.execute(f"CREATE VIEW bo.{name} AS SELECT * FROM bo.{name}_v1")
        op.execute(f"GRANT SELECT ON bo.{name} TO bo_app")
    op.execute("""
        ALTER TABLE bo.projectors
            DROP COLUMN fingerprint, DROP COLUMN build_started_at, DROP COLUMN built_at,
            DROP COLUMN deactivated_at, DROP COLUMN retired_at
    """)
