"""A database role per service, each holding only what that service needs (SPEC 7).

Why: one application role could do everything every service does, so a bug or a stolen
password in the API could switch the active projection version or write read tables. Now:

- `bo_ingest` appends to the log and stores its offsets; nothing else;
- `bo_projector` reads the log and writes the read tables, dead letters and checkpoints;
  it reads the registry of versions but cannot change it;
- `bo_api` reads (views, read tables, the log for history) and appends to the audit trail;
  it cannot switch versions, write read tables, or append to the log;
- `bo_operator` does what the operator commands do: rebuild, cut-over and rollback, dead
  letter replay, backfill (an append to the log), verification.

These are NOLOGIN group roles: each deployment makes a login role in the group its service
needs (compose: deploy/postgres-init; README). `bo_app` stays, the all-in-one role of the
embedded local stack and of earlier deployments. No role may UPDATE, DELETE or TRUNCATE the
log or the audit trail; `bo log verify` checks all five groups.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

ROLES = ("bo_ingest", "bo_projector", "bo_api", "bo_operator")
# Tables that are not the read side: what each role may do with them is granted one by one.
NOT_READ_SIDE = ("event_log", "ingest_offsets", "audit_log", "projectors")


def _read_side_grant(privileges: str, role: str) -> str:
    """Grant `privileges` on every table of schema bo that is not in NOT_READ_SIDE."""
    excluded = ", ".join(f"'{t}'" for t in NOT_READ_SIDE)
    return f"""
        DO $$
        DECLARE t text;
        BEGIN
            FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = 'bo' AND tablename NOT IN ({excluded}) LOOP
                EXECUTE format('GRANT {privileges} ON bo.%I TO {role}', t);
            END LOOP;
        END $$
    """


def upgrade() -> None:
    for role in ROLES:
        op.execute(f"""
            DO $$ BEGIN
                IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
                    CREATE ROLE {role} NOLOGIN;
                END IF;
            END $$""")
        op.execute(f"GRANT USAGE ON SCHEMA bo TO {role}")
        op.execute(f"GRANT SELECT ON public.alembic_version TO {role}")

    op.execute("GRANT SELECT, INSERT ON bo.event_log TO bo_ingest, bo_operator")
    op.execute("GRANT SELECT, INSERT, UPDATE ON bo.ingest_offsets TO bo_ingest, bo_operator")

    op.execute("GRANT SELECT ON bo.event_log TO bo_projector, bo_api")
    op.execute(_read_side_grant("SELECT, INSERT, UPDATE, DELETE", "bo_projector"))
    op.execute(_read_side_grant("SELECT, INSERT, UPDATE, DELETE", "bo_operator"))
    op.execute(_read_side_grant("SELECT", "bo_api"))
    op.execute("GRANT SELECT ON bo.ledger_entries, bo.payment_orders, bo.payment_ledger_pairs"
               " TO bo_projector, bo_api, bo_operator")  # the stable names: views over the active versions
    op.execute("GRANT SELECT ON bo.projectors TO bo_projector, bo_api")
    op.execute("GRANT SELECT, INSERT, UPDATE ON bo.projectors TO bo_operator")
    op.execute("GRANT USAGE, SELECT ON SEQUENCE bo.dead_letters_id_seq TO bo_projector, bo_operator")
    op.execute("DO $$ BEGIN EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO bo_projector, bo_operator',"
               " current_database()); END $$")

    op.execute("GRANT SELECT, INSERT ON bo.audit_log TO bo_api")
    op.execute("GRANT USAGE ON SEQUENCE bo.audit_log_id_seq TO bo_api")
    op.execute("GRANT SELECT ON bo.audit_log, bo.ingest_offsets TO bo_operator")  # bo log verify, checkpoints

    # Read-side tables of later revisions (new projector versions).
    op.execute("ALTER DEFAULT PRIVILEGES IN SCHEMA bo GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES"
               " TO bo_projector, bo_operator")
    op.execute("ALTER DEFAULT PRIVILEGES IN SCHEMA bo GRANT SELECT ON TABLES TO bo_api")


def downgrade() -> None:
    op.execute("ALTER DEFAULT PRIVILEGES IN SCHEMA bo REVOKE SELECT ON TABLES FROM bo_api")
    op.execute("ALTER DEFAULT PRIVILEGES IN SCHEMA bo REVOKE SELECT, INSERT, UPDATE, DELETE ON TABLES"
               " FROM bo_projector, bo_operator")
    op.execute("DO $$ BEGIN EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM bo_projector, bo_operator',"
               " current_database()); END $$")
    for role in ROLES:
        op.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA bo FROM {role}")
        op.execute(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA bo FROM {role}")
        op.execute(f"REVOKE SELECT ON public.alembic_version FROM {role}")
        op.execute(f"REVOKE USAGE ON SCHEMA bo FROM {role}")
    # The roles themselves are cluster-wide and may serve other databases: they are kept.
