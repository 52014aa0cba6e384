"""Make bo.event_log tamper-proof for the app and tamper-evident for everyone.

Why: auditors must be able to trust the log (SPEC 3). Three layers:
1. the application's role `bo_app` may SELECT and INSERT the log, never UPDATE, DELETE
   or TRUNCATE it (privileges), and triggers refuse those statements even for the
   table's owner;
2. each row carries `row_hash` = SHA-256 over the previous row's hash and the row's own
   content, so a privileged user who edits, deletes or reorders rows breaks the chain
   (`bo log verify`);
3. positions are assigned by the appender under its lock (no identity sequence), so the
   chain and the positions are written by one writer at a time.
Also: `value_sha256` and `oversized` for messages above the size limit (logged as stubs),
and `headers` becomes `json`, which keeps the exact text that was hashed.

The canonical encoding hashed here in SQL (for rows that existed before this revision)
is the one `eventstore/chain.py` computes in Python; `bo log verify` checks both.
Roles are cluster-wide: downgrade revokes this database's grants but leaves `bo_app`.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

READ_SIDE_TABLES = (
    "ingest_offsets", "projectors", "projection_tracking", "dead_letters",
    "ledger_entries_v1", "payment_orders_v1", "payment_ledger_pairs_v1",
    "payment_ledger_pairs_v1_members", "ledger_entries_v1_fates", "payment_orders_v1_fates",
    "payment_ledger_pairs_v1_fates",
)


def upgrade() -> None:
    op.execute("""
        DO $$ BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'bo_app') THEN
                CREATE ROLE bo_app NOLOGIN;
            END IF;
        END $$
    """)
    op.execute("ALTER TABLE bo.event_log ALTER COLUMN position DROP IDENTITY")
    op.execute("ALTER TABLE bo.event_log ALTER COLUMN headers DROP DEFAULT")
    op.execute("ALTER TABLE bo.event_log ALTER COLUMN headers TYPE json USING headers::json")
    op.execute("ALTER TABLE bo.event_log ALTER COLUMN headers SET DEFAULT '[]'::json")
    op.execute("""
        ALTER TABLE bo.event_log
            ADD COLUMN value_sha256 bytea,
            ADD COLUMN oversized boolean NOT NULL DEFAULT false,
            ADD COLUMN row_hash bytea
    """)

    # The canonical encoding: every field as 0x00 (absent) or 0x01 || int4 length || bytes;
    # row_hash = sha256(previous, position, ingested_at, sha256(content)): see eventstore/chain.py.
    op.execute("""
        CREATE FUNCTION bo.chain_field(value bytea) RETURNS bytea
        LANGUAGE sql IMMUTABLE AS $$
            SELECT CASE WHEN value IS NULL THEN '\\x00'::bytea
                        ELSE '\\x01'::bytea || int4send(length(value)) || value END
        $$
    """)
    op.execute("""
        CREATE FUNCTION bo.event_log_row_hash(previous bytea, r bo.event_log) RETURNS bytea
        LANGUAGE sql IMMUTABLE AS $$
            SELECT sha256(
                bo.chain_field(previous)
             || bo.chain_field(int8send(r.position))
             || bo.chain_field(int8send((extract(epoch FROM r.ingested_at) * 1000000)::bigint))
             || sha256(
                bo.chain_field(convert_to(r.source, 'UTF8'))
             || bo.chain_field(convert_to(r.topic, 'UTF8'))
             || bo.chain_field(int8send(r."partition"::bigint))
             || bo.chain_field(int8send(r."offset"))
             || bo.chain_field(int8send((extract(epoch FROM r.kafka_timestamp) * 1000000)::bigint))
             || bo.chain_field(convert_to(r.source_file, 'UTF8'))
             || bo.chain_field(int8send(r.source_line))
             || bo.chain_field(r.raw_key)
             || bo.chain_field(r.raw_value)
             || bo.chain_field(convert_to(r.headers::text, 'UTF8'))
             || bo.chain_field(int8send(r.value_size::bigint))
             || bo.chain_field(r.value_sha256)
             || bo.chain_field(CASE WHEN r.oversized THEN '\\x01'::bytea ELSE '\\x00'::bytea END))
            )
        $$
    """)
    op.execute("""
        DO $$
        DECLARE
            previous bytea := NULL;
            r bo.event_log;
        BEGIN
            FOR r IN SELECT * FROM bo.event_log ORDER BY position LOOP
                previous := bo.event_log_row_hash(previous, r);
                UPDATE bo.event_log SET row_hash = previous WHERE position = r.position;
            END LOOP;
        END $$
    """)
    op.execute("ALTER TABLE bo.event_log ALTER COLUMN row_hash SET NOT NULL")

    op.execute("""
        CREATE FUNCTION bo.refuse_log_change() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'bo.event_log is append-only: % refused', TG_OP
                USING ERRCODE = 'restrict_violation';
        END $$
    """)
    op.execute("""
        CREATE TRIGGER event_log_append_only BEFORE UPDATE OR DELETE ON bo.event_log
        FOR EACH ROW EXECUTE FUNCTION bo.refuse_log_change()
    """)
    op.execute("""
        CREATE TRIGGER event_log_no_truncate BEFORE TRUNCATE ON bo.event_log
        FOR EACH STATEMENT EXECUTE FUNCTION bo.refuse_log_change()
    """)

    op.execute("GRANT USAGE ON SCHEMA bo TO bo_app")
    op.execute("REVOKE ALL ON bo.event_log FROM PUBLIC")
    op.execute("GRANT SELECT, INSERT ON bo.event_log TO bo_app")
    for table in READ_SIDE_TABLES:
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON bo.{table} TO bo_app")
    for view in ("ledger_entries", "payment_orders", "payment_ledger_pairs"):
        op.execute(f"GRANT SELECT ON bo.{view} TO bo_app")
    op.execute("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA bo TO bo_app")
    op.execute("GRANT SELECT ON public.alembic_version TO bo_app")
    # Tables that later revisions create (new projector versions) are the app's to write.
    op.execute("ALTER DEFAULT PRIVILEGES IN SCHEMA bo GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO bo_app")
    op.execute("ALTER DEFAULT PRIVILEGES IN SCHEMA bo GRANT USAGE, SELECT ON SEQUENCES TO bo_app")


def downgrade() -> None:
    op.execute("ALTER DEFAULT PRIVILEGES IN SCHEMA bo REVOKE USAGE, SELECT ON SEQUENCES FROM bo_app")
    op.execute("ALTER DEFAULT PRIVILEGES IN SCHEMA bo REVOKE SELECT, INSERT, UPDATE, DELETE ON TABLES FROM bo_app")
    op.execute("REVOKE SELECT ON public.alembic_version FROM bo_app")
    op.execute("REVOKE ALL ON ALL SEQUENCES IN SCHEMA bo FROM bo_app")
    op.execute("REVOKE ALL ON ALL TABLES IN SCHEMA bo FROM bo_app")
    op.execute("REVOKE USAGE ON SCHEMA bo FROM bo_app")
    op.execute("DROP TRIGGER event_log_no_truncate ON bo.event_log")
    op.execute("DROP TRIGGER event_log_append_only ON bo.event_log")
    op.execute("DROP FUNCTION bo.refuse_log_change()")
    op.execute("DROP FUNCTION bo.event_log_row_hash(bytea, bo.event_log)")
    op.execute("DROP FUNCTION bo.chain_field(bytea)")
    op.execute("ALTER TABLE bo.event_log DROP COLUMN row_hash, DROP COLUMN oversized, DROP COLUMN value_sha256")
    op.execute("ALTER TABLE bo.event_log ALTER COLUMN headers DROP DEFAULT")
    op.execute("ALTER TABLE bo.event_log ALTER COLUMN headers TYPE jsonb USING headers::jsonb")
    op.execute("ALTER TABLE bo.event_log ALTER COLUMN headers SET DEFAULT '[]'::jsonb")
    op.execute("""
        DO $$
        DECLARE next_position bigint;
        BEGIN
            SELECT coalesce(max(position), 0) + 1 INTO next_position FROM bo.event_log;
            EXECUTE format('ALTER TABLE bo.event_log ALTER COLUMN position ADD GENERATED ALWAYS AS IDENTITY'
                           ' (START WITH %s)', next_position);
        END $$
    """)
