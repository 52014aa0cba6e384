"""The access audit trail becomes `bo.audit_log` (SPEC 6), with every field an auditor needs and a hash chain.

Why: every `/admin/*` request, allowed or not, now writes one row before its answer leaves
(api/audit.py). The trail keeps the event log's protections: no UPDATE, DELETE or TRUNCATE
(triggers, and the app role may only SELECT and INSERT), and each row's `row_hash` chains
it to the previous row, so that an edit, a deletion or an insertion in the middle is
detected by `bo log verify`. The chain is computed by a BEFORE INSERT trigger under an
advisory lock, which also assigns `id` (no identity default: ids are taken under the lock,
so they commit, and become visible, in chain order). The app cannot choose `id`, `at` or
`row_hash`: the trigger overwrites them.

    row_hash = sha256(field(previous row_hash) || field(id) || field(at, µs since the epoch)
                      || sha256(field(subject) || field(name) || … || field(trace_id)))

with `bo.chain_field` of migration 0002 (eventstore/chain.py computes the same in Python).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# 'bo.audit_log' as a bigint, like the event log's appender lock.
AUDIT_LOCK = 7165135402856769378


def upgrade() -> None:
    op.execute("DROP TRIGGER access_audit_append_only ON bo.access_audit")
    op.execute("DROP TRIGGER access_audit_no_truncate ON bo.access_audit")
    op.execute("ALTER TABLE bo.access_audit RENAME TO audit_log")
    op.execute("ALTER INDEX bo.access_audit_at_idx RENAME TO audit_log_at_idx")
    op.execute("ALTER INDEX bo.access_audit_actor_idx RENAME TO audit_log_subject_idx")
    op.execute("ALTER INDEX bo.access_audit_resource_idx RENAME TO audit_log_resource_idx")
    op.execute("ALTER TABLE bo.audit_log RENAME COLUMN actor TO subject")
    op.execute("ALTER TABLE bo.audit_log RENAME COLUMN client TO client_ip")
    op.execute("ALTER TABLE bo.audit_log ALTER COLUMN id DROP IDENTITY")
    op.execute("ALTER TABLE bo.audit_log ALTER COLUMN subject DROP NOT NULL")  # a refused token has none
    op.execute("""
        ALTER TABLE bo.audit_log
            ADD COLUMN name       text,
            ADD COLUMN issuer     text,
            ADD COLUMN token_id   text,
            ADD COLUMN route      text,
            ADD COLUMN unmask     boolean NOT NULL DEFAULT false,
            ADD COLUMN result     text NOT NULL DEFAULT 'ALLOWED'
                CHECK (result IN ('ALLOWED', 'DENIED', 'NOT_FOUND', 'ERROR')),
            ADD COLUMN user_agent text,
            ADD COLUMN trace_id   text,
            ADD COLUMN row_hash   bytea
    """)
    op.execute("""
        UPDATE bo.audit_log SET result = CASE WHEN status IN (401, 403) THEN 'DENIED' WHEN status = 404 THEN 'NOT_FOUND'
                                              WHEN status >= 400 THEN 'ERROR' ELSE 'ALLOWED' END
    """)
    op.execute("ALTER TABLE bo.audit_log ALTER COLUMN result DROP DEFAULT")
    op.execute("CREATE SEQUENCE bo.audit_log_id_seq OWNED BY bo.audit_log.id")
    op.execute("SELECT setval('bo.audit_log_id_seq', coalesce((SELECT max(id) FROM bo.audit_log), 0) + 1, false)")
    op.execute("""
        CREATE FUNCTION bo.audit_log_row_hash(previous bytea, r bo.audit_log) RETURNS bytea
        LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
            SELECT sha256(
                bo.chain_field(previous)
             || bo.chain_field(int8send(r.id))
             || bo.chain_field(int8send((extract(epoch FROM r.at) * 1000000)::bigint))
             || sha256(
                bo.chain_field(convert_to(r.subject, 'UTF8'))
             || bo.chain_field(convert_to(r.name, 'UTF8'))
             || bo.chain_field(convert_to(r.issuer, 'UTF8'))
             || bo.chain_field(convert_to(r.token_id, 'UTF8'))
             || bo.chain_field(convert_to(array_to_json(r.roles)::text, 'UTF8'))
             || bo.chain_field(convert_to(r.method, 'UTF8'))
             || bo.chain_field(convert_to(r.route, 'UTF8'))
             || bo.chain_field(convert_to(r.path, 'UTF8'))
             || bo.chain_field(convert_to(r.resource, 'UTF8'))
             || bo.chain_field(convert_to(r.query, 'UTF8'))
             || bo.chain_field(CASE WHEN r.unmask THEN '\\x01'::bytea ELSE '\\x00'::bytea END)
             || bo.chain_field(int8send(r.status::bigint))
             || bo.chain_field(convert_to(r.result, 'UTF8'))
             || bo.chain_field(convert_to(r.client_ip, 'UTF8'))
             || bo.chain_field(convert_to(r.user_agent, 'UTF8'))
             || bo.chain_field(convert_to(r.correlation_id, 'UTF8'))
             || bo.chain_field(convert_to(r.trace_id, 'UTF8')))
            )
        $$
    """)
    # Rows of the previous release (none were written by the app; tests and operators may have some).
    op.execute("""
        DO $$
        DECLARE
            previous bytea := NULL;
            r bo.audit_log;
        BEGIN
            FOR r IN SELECT * FROM bo.audit_log ORDER BY id LOOP
                previous := bo.audit_log_row_hash(previous, r);
                UPDATE bo.audit_log SET row_hash = previous WHERE id = r.id;
            END LOOP;
        END $$
    """)
    op.execute("ALTER TABLE bo.audit_log ALTER COLUMN row_hash SET NOT NULL")
    op.execute(f"""
        CREATE FUNCTION bo.audit_log_chain() RETURNS trigger
        LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
        DECLARE
            previous bytea;
        BEGIN
            -- The previous hash must be read after the lock, in a snapshot taken after it: only
            -- READ COMMITTED takes one per statement. Under a stricter isolation the chain would fork.
            IF current_setting('transaction_isolation') <> 'read committed' THEN
                RAISE EXCEPTION 'bo.audit_log is appended in READ COMMITTED only (not %)',
                    current_setting('transaction_isolation') USING ERRCODE = 'invalid_transaction_state';
            END IF;
            PERFORM pg_advisory_xact_lock({AUDIT_LOCK});
            SELECT row_hash INTO previous FROM bo.audit_log ORDER BY id DESC LIMIT 1;
            NEW.id := nextval('bo.audit_log_id_seq');
            NEW.at := clock_timestamp();
            NEW.row_hash := bo.audit_log_row_hash(previous, NEW);
            RETURN NEW;
        END $$
    """)
    op.execute("""
        CREATE TRIGGER audit_log_chain BEFORE INSERT ON bo.audit_log
        FOR EACH ROW EXECUTE FUNCTION bo.audit_log_chain()
    """)
    op.execute("""
        CREATE OR REPLACE FUNCTION bo.refuse_audit_change() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'bo.audit_log is append-only: % refused', TG_OP
                USING ERRCODE = 'restrict_violation';
        END $$
    """)
    op.execute("""
        CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON bo.audit_log
        FOR EACH ROW EXECUTE FUNCTION bo.refuse_audit_change()
    """)
    op.execute("""
        CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON bo.audit_log
        FOR EACH STATEMENT EXECUTE FUNCTION bo.refuse_audit_change()
    """)
    op.execute("REVOKE ALL ON bo.audit_log FROM bo_app")
    op.execute("GRANT SELECT, INSERT ON bo.audit_log TO bo_app")
    op.execute("GRANT USAGE ON SEQUENCE bo.audit_log_id_seq TO bo_app")
    # A session cannot shadow what the chain functions call (a `clock_timestamp` of its own in
    # a schema earlier on its search_path, on servers where PUBLIC may still create in public).
    for function in ("bo.chain_field(bytea)", "bo.event_log_row_hash(bytea, bo.event_log)",
                     "bo.refuse_log_change()", "bo.refuse_audit_change()"):
        op.execute(f"ALTER FUNCTION {function} SET search_path = pg_catalog, pg_temp")


def downgrade() -> None:
    for function in ("bo.chain_field(bytea)", "bo.event_log_row_hash(bytea, bo.event_log)",
                     "bo.refuse_log_change()", "bo.refuse_audit_change()"):
        op.execute(f"ALTER FUNCTION {function} RESET search_path")
    op.execute("DROP TRIGGER audit_log_append_only ON bo.audit_log")
    op.execute("DROP TRIGGER audit_log_no_truncate ON bo.audit_log")
    op.execute("DROP TRIGGER audit_log_chain ON bo.audit_log")
    op.execute("DROP FUNCTION bo.audit_log_chain()")
    op.execute("DROP FUNCTION bo.audit_log_row_hash(bytea, bo.audit_log)")
    op.execute("""
        ALTER TABLE bo.audit_log
            DROP COLUMN name, DROP COLUMN issuer, DROP COLUMN token_id, DROP COLUMN route,
            DROP COLUMN unmask, DROP COLUMN result, DROP COLUMN user_agent, DROP COLUMN trace_id,
            DROP COLUMN row_hash
    """)
    op.execute("DROP SEQUENCE bo.audit_log_id_seq")
    op.execute("UPDATE bo.audit_log SET subject = '(none)' WHERE subject IS NULL")
    op.execute("ALTER TABLE bo.audit_log ALTER COLUMN subject SET NOT NULL")
    op.execute("ALTER TABLE bo.audit_log ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY")
    op.execute("SELECT setval(pg_get_serial_sequence('bo.audit_log', 'id'),"
                " coalesce((SELECT max(id) FROM bo.audit_log), 0) + 1, false)")
    op.execute("ALTER TABLE bo.audit_log RENAME COLUMN client_ip TO client")
    op.execute("ALTER TABLE bo.audit_log RENAME COLUMN subject TO actor")
    op.execute("ALTER INDEX bo.audit_log_at_idx RENAME TO access_audit_at_idx")
    op.execute("ALTER INDEX bo.audit_log_subject_idx RENAME TO access_audit_actor_idx")
    op.execute("ALTER INDEX bo.audit_log_resource_idx RENAME TO access_audit_resource_idx")
    op.execute("ALTER TABLE bo.audit_log RENAME TO access_audit")
    op.execute("""
        CREATE OR REPLACE FUNCTION bo.refuse_audit_change() RETURNS trigger
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
    op.execute("REVOKE ALL ON bo.access_audit FROM bo_app")
    op.execute("GRANT SELECT, INSERT ON bo.access_audit TO bo_app")
