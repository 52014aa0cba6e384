"""The access audit trail: who read what, when (its writing comes with authentication).

Why: SPEC 5's `GET /admin/audit-log` serves auditors the trail of accesses, filterable by
actor, resource and time. The table is append-only like the event log: the application role
may insert and read, and triggers refuse UPDATE, DELETE and TRUNCATE even from the owner.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE bo.access_audit (
            id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            at             timestamptz NOT NULL DEFAULT clock_timestamp(),
            actor          text NOT NULL,
            roles          text[] NOT NULL DEFAULT '{}',
            method         text NOT NULL,
            path           text NOT NULL,
            resource       text,
            query          text,
            status         integer NOT NULL,
            correlation_id text,
            client         text
        )
    """)
    op.execute("CREATE INDEX access_audit_at_idx ON bo.access_audit (at DESC, id DESC)")
    op.execute("CREATE INDEX access_audit_actor_idx ON bo.access_audit (actor, id DESC)")
    op.execute("CREATE INDEX access_audit_resource_idx ON bo.access_audit (resource, id DESC)")
    op.execute("""
        CREATE FUNCTION bo.refuse_audit_change() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'bo.access_audit is append-only: % refused', TG_OP
                USING ERRCODE = 'restrict_violation';
        END $$
    """)
    op.execute("""
        CREATE TRIGGER access_audit_append_only BEFORE UPDATE OR DELETE ON bo.access_audit
        FOR EACH ROW EXECUTE FUNCTION bo.refuse_audit_change()
    """)
    op.execute("""
        CREATE TRIGGER access_audit_no_truncate BEFORE TRUNCATE ON bo.access_audit
        FOR EACH STATEMENT EXECUTE FUNCTION bo.refuse_audit_change()
    """)
    # The default privileges of 0002 would give the app UPDATE and DELETE: an audit trail gets neither.
    op.execute("REVOKE ALL ON bo.access_audit FROM bo_app")
    op.execute("GRANT SELECT, INSERT ON bo.access_audit TO bo_app")


def downgrade() -> None:
    op.execute("DROP TABLE bo.access_audit")
    op.execute("DROP FUNCTION bo.refuse_audit_change()")
