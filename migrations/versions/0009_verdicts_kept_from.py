"""Where the kept verdicts start being complete, so that `bo log verify` can tell a deleted one.

Why: `bo log verify` judges the whole log again and reports a log row below the projectors'
checkpoints that has no kept verdict (projections/verdicts_verify.py): a batch keeps the
verdict of every row it reads, so such a hole is a deleted verdict. A log projected before
migration 0008 has holes that nobody made: its rows were applied before verdicts were
kept. This one-row table records, once, the top of the last hole at the time of this
migration (0 for a database migrated before any row was projected); verify reports holes
above it only. Rows at or below it are judged again by the next rebuild, as before.

It costs one anti-join of the log against the verdicts, once (a few seconds per million
rows). No service role may change the row: it is read by verify (operator, app) alone.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE bo.verdicts_kept_from (
            only_row  boolean PRIMARY KEY DEFAULT true CHECK (only_row),
            position  bigint NOT NULL CHECK (position >= 0)
        )
    """)
    op.execute("""
        -- The tracking name is written apart (':' || 'v'): SQLAlchemy reads a colon before a word as a parameter.
        WITH applied AS (
            SELECT coalesce(max(t.notification_id), 0) AS up_to
              FROM bo.projectors p
              JOIN bo.projection_tracking t ON t.application_name = p.name || ':' || 'v' || p.version
        )
        INSERT INTO bo.verdicts_kept_from (position)
        SELECT coalesce(max(l.position), 0)
          FROM bo.event_log l, applied
         WHERE l.position <= applied.up_to
           AND NOT EXISTS (SELECT 1 FROM bo.event_verdicts v WHERE v.position = l.position)
    """)
    # The schema's default privileges (0002, 0006) gave every service role access; readers only.
    op.execute("REVOKE ALL ON bo.verdicts_kept_from FROM bo_app, bo_ingest, bo_projector, bo_api, bo_operator")
    op.execute("GRANT SELECT ON bo.verdicts_kept_from TO bo_app, bo_projector, bo_operator")


def downgrade() -> None:
    op.execute("DROP TABLE bo.verdicts_kept_from")
