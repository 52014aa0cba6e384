"""The access audit trail `bo.audit_log` (migrations 0004, 0005): one row per `/admin/*` request.

The API is the trail's only writer (`record`, called by api/audit.py before each answer
leaves) and serves its reads to auditors (`audit_page`, `GET /admin/audit-log`: newest first,
keyset-paged by id, filterable by actor, resource and time). The table's trigger assigns
`id`, `at`, the lane and the row's place in that lane's hash chain (migration 0007: eight
chains, so that audited requests commit side by side); the app role may only insert and read.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from eventstore.chain import field as chain_field
from eventstore.chain import int_field, text_field, time_field
from eventstore.verify import roles_that_can_change

INSERT_AUDIT = """
    INSERT INTO bo.audit_log (subject, name, issuer, token_id, roles, method, route, path, resource, query,
                              unmask, status, result, client_ip, user_agent, correlation_id, trace_id)
    VALUES (%(subject)s, %(name)s, %(issuer)s, %(token_id)s, %(roles)s, %(method)s, %(route)s, %(path)s,
            %(resource)s, %(query)s, %(unmask)s, %(status)s, %(result)s, %(client_ip)s, %(user_agent)s,
            %(correlation_id)s, %(trace_id)s)
"""

SELECT_AUDIT_PAGE = """
    SELECT id, at, subject, name, issuer, token_id, roles, method, route, path, resource, query, unmask, status,
           result, client_ip, user_agent, correlation_id, trace_id
      FROM bo.audit_log
     WHERE (%(actor)s::text IS NULL OR subject = %(actor)s::text)
       AND (%(resource)s::text IS NULL OR resource = %(resource)s::text)
       AND (%(from)s::timestamptz IS NULL OR at >= %(from)s::timestamptz)
       AND (%(to)s::timestamptz IS NULL OR at < %(to)s::timestamptz)
       AND (%(before)s::bigint IS NULL OR id < %(before)s::bigint)
     ORDER BY id DESC
     LIMIT %(limit)s
"""


# Whether a row could be appended now, without appending one (`GET /readyz`): ROW EXCLUSIVE
# is the lock an INSERT takes, and LOCK TABLE in that mode needs INSERT (or a stronger)
# privilege; the sequence gives the row its id. Rolled back at once.
LOCK_AS_AN_INSERT = "LOCK TABLE bo.audit_log IN ROW EXCLUSIVE MODE"
SELECT_ID_SEQUENCE_USABLE = "SELECT has_sequence_privilege('bo.audit_log_id_seq', 'USAGE') AS usable"


def check_writable(conn: psycopg.Connection[Any], lock_timeout_ms: int = 1000) -> str | None:
    """Why no audit row could be written now (a revoked privilege, a lock held), or None."""
    try:
        with conn.transaction(force_rollback=True):
            conn.execute("SELECT set_config('lock_timeout', %s, true)", (f"{lock_timeout_ms}ms",))
            conn.execute(LOCK_AS_AN_INSERT)
            usable = conn.execute(SELECT_ID_SEQUENCE_USABLE).fetchone()
    except psycopg.errors.InsufficientPrivilege:
        return "the API's role may not append to the audit trail (SQLSTATE 42501)"
    except psycopg.errors.LockNotAvailable:
        return "the audit trail is locked by another session (SQLSTATE 55P03)"
    if not usable or not usable[0]:
        return "the API's role may not use the audit trail's id sequence"
    return None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """What one request was: who, what, the result, and where it came from."""

    subject: str | None
    name: str | None
    issuer: str | None
    token_id: str | None
    roles: list[str]
    method: str
    route: str | None
    path: str
    resource: str | None
    query: str | None
    unmask: bool
    status: int
    result: str
    client_ip: str | None
    user_agent: str | None
    correlation_id: str | None
    trace_id: str | None


def record(conn: psycopg.Connection[Any], entry: AuditEntry) -> None:
    """Append one row (autocommit connection: it is committed when this returns)."""
    conn.execute(INSERT_AUDIT, {
        "subject": entry.subject, "name": entry.name, "issuer": entry.issuer, "token_id": entry.token_id,
        "roles": entry.roles, "method": entry.method, "route": entry.route, "path": entry.path,
        "resource": entry.resource, "query": entry.query, "unmask": entry.unmask, "status": entry.status,
        "result": entry.result, "client_ip": entry.client_ip, "user_agent": entry.user_agent,
        "correlation_id": entry.correlation_id, "trace_id": entry.trace_id}, prepare=True)


@dataclass(frozen=True, slots=True)
class AuditFilter:
    actor: str | None = None
    resource: str | None = None
    from_: datetime | None = None
    to: datetime | None = None


def audit_page(conn: psycopg.Connection[Any], where: AuditFilter, before: int | None, limit: int
               ) -> tuple[list[dict[str, Any]], int | None]:
    """Up to `limit` entries older than id `before`, and the id to continue before (None at the end)."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(SELECT_AUDIT_PAGE, {
            "actor": where.actor, "resource": where.resource, "from": where.from_, "to": where.to,
            "before": before, "limit": limit + 1}).fetchall()
    if len(rows) <= limit:
        return rows, None
    return rows[:limit], int(rows[limit - 1]["id"])


# --- verification (`bo log verify`) ----------------------------------------------------------

SELECT_FOR_VERIFY = """
    SELECT id, lane, at, subject, name, issuer, token_id, roles, method, route, path, resource, query, unmask, status,
           result, client_ip, user_agent, correlation_id, trace_id, row_hash
      FROM bo.audit_log WHERE id > %(after)s ORDER BY id LIMIT %(limit)s
"""
SELECT_TRIGGERS = """
    SELECT tgname FROM pg_trigger
     WHERE tgrelid = 'bo.audit_log'::regclass AND tgenabled IN ('O', 'A')  -- 'R' (replica only) never fires
       AND tgname IN ('audit_log_append_only', 'audit_log_no_truncate', 'audit_log_chain')
"""
TRIGGERS = ("audit_log_append_only", "audit_log_no_truncate", "audit_log_chain")
# What a signed checkpoint records of the trail (each lane's head), and finds again when it is verified.
# The lanes of migration 0007: rows in any other lane are reported, whatever the database says.
LANES = 8
SELECT_HEADS = """
    SELECT l.lane, h.id, h.row_hash, h.at
      FROM generate_series(0, 7) AS l(lane)  -- 0 .. LANES - 1
      CROSS JOIN LATERAL (SELECT id, row_hash, at FROM bo.audit_log a
                           WHERE a.lane = l.lane ORDER BY id DESC LIMIT 1) AS h
     ORDER BY l.lane
"""
SELECT_LANE_HEAD = "SELECT id FROM bo.audit_log WHERE lane = %(lane)s ORDER BY id DESC LIMIT 1"
SELECT_ROW_HASH_AT = "SELECT row_hash FROM bo.audit_log WHERE id = %(id)s"
SELECT_FIRST_EARLIER_AFTER = """
    SELECT min(id) FROM bo.audit_log WHERE lane = %(lane)s AND id > %(id)s AND at < %(at)s
"""
SELECT_FIRST_EARLIER_ELSEWHERE = """
    SELECT min(id) FROM bo.audit_log WHERE NOT (lane = ANY(%(lanes)s::int[])) AND id > %(after)s AND at < %(at)s
"""


@dataclass
class TrailReport:
    rows: int = 0
    head: int = 0
    broken_id: int | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def row_hash(previous: bytes | None, row: Mapping[str, Any]) -> bytes:
    """`bo.audit_log_row_hash` (migration 0005) in Python, over the row's stored values."""
    content = hashlib.sha256(b"".join((
        *(text_field(row[c]) for c in ("subject", "name", "issuer", "token_id")),
        text_field(json.dumps(list(row["roles"]), separators=(",", ":"), ensure_ascii=False)),
        *(text_field(row[c]) for c in ("method", "route", "path", "resource", "query")),
        chain_field(b"\x01" if row["unmask"] else b"\x00"),
        int_field(row["status"]),
        *(text_field(row[c]) for c in ("result", "client_ip", "user_agent", "correlation_id", "trace_id")),
    ))).digest()
    return hashlib.sha256(chain_field(previous) + int_field(row["id"]) + time_field(row["at"]) + content).digest()


def verify_trail(conn: psycopg.Connection[Any], *, batch: int = 5000) -> TrailReport:
    """Re-derive the trail's hash chain, and check that it stays append-only."""
    report = TrailReport()
    enabled = {r[0] for r in conn.execute(SELECT_TRIGGERS).fetchall()}
    report.problems += [f"trigger {t} is missing or disabled" for t in TRIGGERS if t not in enabled]
    report.problems += [f"role {role} (a service role or a member of one) can change bo.audit_log: it {why}"
                        for role, why in roles_that_can_change(conn, "bo.audit_log")]
    previous: dict[int, bytes] = {}  # by lane: each lane is a chain of its own (migration 0007)
    conn.rollback()
    # One snapshot for the whole walk: ids commit in order within a lane, not across lanes, so
    # pages read at different moments could skip a row of one lane that committed late.
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        while True:
            rows = cur.execute(SELECT_FOR_VERIFY, {"after": report.head, "limit": batch}).fetchall()
            for row in rows:
                lane = int(row["lane"])
                if not 0 <= lane < LANES and lane not in previous:
                    report.problems.append(f"audit row {row['id']} is in lane {lane}, which does not exist")
                    report.broken_id = report.broken_id or int(row["id"])
                if row_hash(previous.get(lane), row) != bytes(row["row_hash"]) and report.broken_id is None:
                    report.broken_id = int(row["id"])
                    report.problems.append(f"audit row {row['id']}: row_hash does not match the row's content and"
                                           f" the previous hash of its lane ({lane}): edited, inserted or deleted")
                previous[lane] = bytes(row["row_hash"])
                report.head = int(row["id"])
            report.rows += len(rows)
            if len(rows) < batch:
                return report
