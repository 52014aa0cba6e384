"""The contract's verdict on each log row, kept: a row is judged once per contract, not once per build.

Why: every projection batch judged its log rows again (the SQL fast path of the contract,
and Python for the rest), and that was the largest single share of a rebuild's time (about
a third, docs/performance.md). A verdict is a pure function of the log row, the rows before
it (for repeated event ids) and the contract's code, so it is kept here, with the
fingerprint of the code that reached it (`projections.verdicts.CONTRACT`). A batch takes the
verdicts of its rows judged by the code now running, judges the others, and keeps those.
Code with another fingerprint never reads a verdict it did not reach: a contract fix
judges again, row by row, as batches read them.

The columns are those of the projector's batch (`bo_batch`, projections/batch.py): what the
contract's models hold for a valid row (personal fields unmasked, as in the log itself), or
the rejection's reason and detail. Readers are the projector and operator roles; the API
has no use for it and gets nothing.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE bo.event_verdicts (
            position        bigint PRIMARY KEY,
            contract        text NOT NULL,
            ingested_at     timestamptz NOT NULL,
            event_type      text,
            topic           text,
            verdict         text NOT NULL CHECK (verdict IN ('VALID', 'REJECTED')),
            reason          text,
            detail          text,
            occurrence      text CHECK (occurrence IN ('FIRST', 'DUPLICATE', 'CONFLICT')),
            event_id        text,
            entity_id       text,
            wallet_id       text,
            entry_type      text,
            amount          numeric,
            currency        text,
            status          text,
            related_id      text,
            related_type    text,
            merchant_id     text,
            payment_method  text,
            payer_name      text,
            payer_email     text,
            payer_phone     text,
            account_number  text,
            created_at      timestamptz,
            updated_at      timestamptz,
            version         bigint
        )
    """)
    # The schema's default privileges (0002, 0006) gave every service role access; only the
    # projector, the operator commands and the all-in-one bo_app use it.
    op.execute("REVOKE ALL ON bo.event_verdicts FROM bo_api")
    op.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON bo.event_verdicts TO bo_projector, bo_operator, bo_app")


def downgrade() -> None:
    op.execute("DROP TABLE bo.event_verdicts")
