"""The audit trail's hash chain becomes eight chains (lanes), so audited requests commit in parallel.

Why: every `/admin/*` request appends its audit row before its answer leaves. With one chain,
each append held the chain's lock until its commit was flushed to disk, so all the API's
requests queued behind one another's WAL flush: about 1,000 audited requests/s at most on
this machine, whatever the number of workers (decisions §58). Now a row joins the first of
`bo.audit_log_lanes()` lanes whose lock is free (trying them in order, blocking on one only
when all are busy), and links to the previous row *of its lane*. Rows of different lanes
commit side by side, and PostgreSQL flushes their commits together.

What stays: the row hash is the same function of the same fields (the lane is not hashed:
moving a row to another lane breaks both lanes' links), so every existing row, all of them
now lane 0, keeps its hash, and checkpoints signed before this migration still verify. Ids
are still taken under the lane's lock: within a lane they commit in order. A transaction
that appends several rows keeps the lane its first row took (`bo.audit_lane`, local to the
transaction), so it holds one lane lock and cannot deadlock with another.

The row hash is computed as before, by the same expression, but in PL/pgSQL (whose plan a
session keeps) over an inlinable `bo.chain_field`: about 70 µs less database time per audited
request. `bo.chain_field` loses its pinned search_path to become inlinable: it is only ever
evaluated inside the chain functions, whose search_path stays pinned, and a session that
calls it directly can only change its own answer.

The head of a lane is read by index, always: a plan cached while the table's statistics
said "empty" read the whole table on every append (measured: an append cost 1 ms more per
3,000 rows already in the trail, until the next ANALYZE).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

LANES = 8
# Advisory lock keys of the lanes: (LANE_LOCK_CLASS, lane). 'bo.a' as an int4.
LANE_LOCK_CLASS = 1651393377
# The single chain's lock of migration 0005, for the downgrade.
AUDIT_LOCK = 7165135402856769378


# The row hash of migration 0005, field by field (api/audit_log.py computes the same in Python).
ROW_HASH = """
    sha256(
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
"""


def upgrade() -> None:
    op.execute("ALTER FUNCTION bo.chain_field(bytea) RESET search_path")
    op.execute(f"""
        CREATE OR REPLACE FUNCTION bo.audit_log_row_hash(previous bytea, r bo.audit_log) RETURNS bytea
        LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
        BEGIN
            RETURN {ROW_HASH};
        END $$
    """)
    op.execute("ALTER TABLE bo.audit_log ADD COLUMN lane smallint NOT NULL DEFAULT 0")
    op.execute("ALTER TABLE bo.audit_log ALTER COLUMN lane DROP DEFAULT")
    op.execute(f"ALTER TABLE bo.audit_log ADD CONSTRAINT audit_log_lane_check CHECK (lane >= 0 AND lane < {LANES})")
    op.execute("CREATE INDEX audit_log_lane_idx ON bo.audit_log (lane, id)")
    op.execute(f"""
        CREATE FUNCTION bo.audit_log_lanes() RETURNS integer
        LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT {LANES} $$
    """)
    op.execute(f"""
        CREATE OR REPLACE FUNCTION bo.audit_log_chain() RETURNS trigger
        LANGUAGE plpgsql
        SET search_path = pg_catalog, pg_temp
        SET enable_seqscan = off
        AS $$
        DECLARE
            previous bytea;
            taken text := current_setting('bo.audit_lane', true);
            chosen integer;
        BEGIN
            -- The previous hash must be read after the lock, in a snapshot taken after it: only
            -- READ COMMITTED takes one per statement. Under a stricter isolation the chain would fork.
            IF current_setting('transaction_isolation') <> 'read committed' THEN
                RAISE EXCEPTION 'bo.audit_log is appended in READ COMMITTED only (not %)',
                    current_setting('transaction_isolation') USING ERRCODE = 'invalid_transaction_state';
            END IF;
            IF taken ~ '^[0-9]{{1,4}}$' AND taken::integer < {LANES} THEN
                chosen := taken::integer;  -- this transaction's lane (its lock is held already)
                PERFORM pg_advisory_xact_lock({LANE_LOCK_CLASS}, chosen);
            ELSE
                FOR lane IN 0 .. {LANES - 1} LOOP
                    IF pg_try_advisory_xact_lock({LANE_LOCK_CLASS}, lane) THEN
                        chosen := lane;
                        EXIT;
                    END IF;
                END LOOP;
                IF chosen IS NULL THEN  -- every lane is busy: queue on one
                    chosen := pg_backend_pid() % {LANES};
                    PERFORM pg_advisory_xact_lock({LANE_LOCK_CLASS}, chosen);
                END IF;
                PERFORM set_config('bo.audit_lane', chosen::text, true);
            END IF;
            SELECT row_hash INTO previous FROM bo.audit_log WHERE lane = chosen ORDER BY id DESC LIMIT 1;
            NEW.lane := chosen;
            NEW.id := nextval('bo.audit_log_id_seq');
            NEW.at := clock_timestamp();
            NEW.row_hash := bo.audit_log_row_hash(previous, NEW);
            RETURN NEW;
        END $$
    """)


def downgrade() -> None:
    op.execute("LOCK TABLE bo.audit_log IN EXCLUSIVE MODE")  # no append can land in a lane after the check
    op.execute("""
        DO $$
        BEGIN
            IF EXISTS (SELECT 1 FROM bo.audit_log WHERE lane <> 0) THEN
                RAISE EXCEPTION 'bo.audit_log has rows in lanes other than 0: one chain cannot hold them'
                    ' without rewriting their hashes, so revision 0006 cannot be restored'
                    USING ERRCODE = 'object_not_in_prerequisite_state';
            END IF;
        END $$
    """)
    op.execute(f"""
        CREATE OR REPLACE FUNCTION bo.audit_log_chain() RETURNS trigger
        LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
        DECLARE
            previous bytea;
        BEGIN
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
    op.execute("DROP FUNCTION bo.audit_log_lanes()")
    op.execute("ALTER TABLE bo.audit_log DROP COLUMN lane")
    op.execute("DROP FUNCTION bo.audit_log_row_hash(bytea, bo.audit_log)")
    op.execute(f"""
        CREATE FUNCTION bo.audit_log_row_hash(previous bytea, r bo.audit_log) RETURNS bytea
        LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$ SELECT {ROW_HASH} $$
    """)
    op.execute("ALTER FUNCTION bo.chain_field(bytea) SET search_path = pg_catalog, pg_temp")
