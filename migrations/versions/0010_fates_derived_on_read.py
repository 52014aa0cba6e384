"""Fates are derived on read: the per-version fates tables go.

Why: every projector version wrote one fate row per log row it read (APPLIED, SUPERSEDED,
DUPLICATE, DEAD_LETTERED), for the history API to show. That was a third of a rebuild's
row writes, for an answer read one entity at a time. The history now derives each row's
fate for its one entity (projections/fates.py) from the log, the contract's verdicts, the
version's open dead letters and the ordering key; nothing reads these tables any more.

Downgrade recreates them empty, as 0001 and 0003 made them: code of an earlier revision then
shows no fate until its versions are rebuilt (`bo rebuild NAME`).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

FATES_TABLES = ("ledger_entries_v1_fates", "payment_orders_v1_fates", "payment_ledger_pairs_v1_fates",
                "ledger_entries_v2_fates")


def upgrade() -> None:
    for table in FATES_TABLES:
        op.execute(f"DROP TABLE bo.{table}")


def downgrade() -> None:
    for table in FATES_TABLES:
        op.execute(f"""
            CREATE TABLE bo.{table} (
                position       bigint PRIMARY KEY,
                event_id       text,
                payload_sha256 bytea,
                fate           text NOT NULL CHECK (fate IN ('APPLIED', 'SUPERSEDED', 'DUPLICATE', 'DEAD_LETTERED'))
            )
        """)
        op.execute(f"CREATE UNIQUE INDEX {table}_event_id_uq ON bo.{table} (event_id)"
                   " WHERE fate IN ('APPLIED', 'SUPERSEDED')")
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON bo.{table} TO bo_app, bo_projector, bo_operator")
