"""`bo log verify`: re-derive the hash chain and every derived column, and check immutability.

Reads the whole log in position order. The first row whose stored `row_hash` is not the
SHA-256 of its content and the previous row's stored hash is reported: an edited,
inserted or deleted row (or reordered rows) shows there. Every column that is not hashed
is derived from the raw bytes and re-derived here: the readable columns (event_id,
event_type, schema_version, entity_id, trace headers) by decoding the raw value again, and
`document` (the parsed JSON that projections read) by parsing the raw value again on the
server, as the append did. So editing any of them is caught too. The last row each stored
offset vouches for must exist, so a deleted tail is caught as well. Immutability: the
append-only triggers must be enabled, and neither `bo_app` nor any role in it may be a
superuser, own the log, or hold UPDATE, DELETE or TRUNCATE on it.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.rows import dict_row

from eventstore import sql
from eventstore.chain import content_digest, row_hash, time_field
from eventstore.ingest.decode import decode
from eventstore.records import KafkaCoordinates, LogRecord

DERIVED = ("event_id", "event_type", "schema_version", "entity_id", "traceparent", "correlation_id")

# Rows whose stored `document` is not the raw value parsed as jsonb, as the append stored it
# (eventstore/log.py). Asked only for rows with a document whose raw value decode() found
# storable as jsonb (valid UTF-8, a JSON object jsonb accepts). A document may be absent
# where decode found one (the append stores a batch without documents when PostgreSQL
# refuses one of them): projections then judge that row from the raw bytes alone.
SELECT_DOCUMENTS_UNLIKE_RAW = """
    SELECT position FROM bo.event_log
     WHERE position = ANY(%(positions)s)
       AND CASE WHEN document IS NULL THEN false  -- CASE: the cast is never tried on a row without one
                ELSE document IS DISTINCT FROM convert_from(raw_value, 'UTF8')::jsonb END
"""

SELECT_TRIGGERS = """
    SELECT tgname FROM pg_trigger
     WHERE tgrelid = 'bo.event_log'::regclass AND tgenabled IN ('O', 'A')  -- 'R' (replica only) never fires
       AND tgname IN ('event_log_append_only', 'event_log_no_truncate')
"""
# The service roles (migrations 0002, 0006) and every role in them: none may change an
# append-only table (the log, the audit trail).
SERVICE_ROLES = ("bo_app", "bo_ingest", "bo_projector", "bo_api", "bo_operator")
SELECT_ROLES_THAT_CAN_CHANGE = """
    WITH app_roles AS (
        SELECT r.oid, r.rolname, r.rolsuper FROM pg_roles r WHERE r.rolname = ANY(%(service_roles)s)
        UNION
        SELECT m.oid, m.rolname, m.rolsuper FROM pg_roles m
          JOIN pg_auth_members am ON am.member = m.oid
          JOIN pg_roles g ON g.oid = am.roleid AND g.rolname = ANY(%(service_roles)s)
    )
    SELECT a.rolname,
           CASE WHEN a.rolsuper THEN 'is a superuser'
                WHEN pg_has_role(a.oid, (SELECT relowner FROM pg_class WHERE oid = %(table)s::regclass), 'MEMBER')
                     THEN 'owns the table'
                ELSE 'holds ' || p.privilege END AS why
      FROM app_roles a
      LEFT JOIN LATERAL (
            SELECT privilege FROM unnest(ARRAY['UPDATE', 'DELETE', 'TRUNCATE']) AS privilege
             WHERE has_table_privilege(a.oid, %(table)s::regclass, privilege) LIMIT 1) p ON true
     WHERE a.rolsuper
        OR pg_has_role(a.oid, (SELECT relowner FROM pg_class WHERE oid = %(table)s::regclass), 'MEMBER')
        OR p.privilege IS NOT NULL
"""

# The last row every stored offset vouches for must still be there (a tail deleted by a
# privileged user leaves no next row to break the chain).
SELECT_MISSING_LAST_ROWS = """
    SELECT o.consumer_group, o.topic, o."partition", o.next_offset
      FROM bo.ingest_offsets o
     WHERE NOT EXISTS (
            SELECT 1 FROM bo.event_log l
             WHERE (l.source = 'kafka' AND l.topic = o.topic AND l."partition" = o."partition"
                    AND l."offset" = o.next_offset - 1)
                OR (l.source = 'backfill' AND l.source_file = o.topic AND l.source_line = o.next_offset - 1))
"""


@dataclass
class VerifyReport:
    rows: int = 0
    head: int = 0
    broken_position: int | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(conn: psycopg.Connection[Any], *, batch: int = 5000,
           progress: Callable[[int], None] | None = None) -> VerifyReport:
    report = VerifyReport()
    _check_immutability(conn, report)
    previous: bytes | None = None
    after = 0
    with conn.cursor(row_factory=dict_row) as cur:
        while True:
            rows = cur.execute(sql.SELECT_FOR_VERIFY, {"after": after, "limit": batch}).fetchall()
            decoded = [_decoded(row) for row in rows]
            unlike_raw = _documents_unlike_raw(cur, rows, decoded)
            for row, record in zip(rows, decoded, strict=True):
                problem = _check_row(previous, row, record, row["position"] in unlike_raw)
                if problem and report.broken_position is None:
                    report.broken_position = row["position"]
                    report.problems.append(f"position {row['position']}: {problem}")
                previous = bytes(row["row_hash"])
            report.rows += len(rows)
            if progress:
                progress(len(rows))
            if len(rows) < batch:
                break
            after = rows[-1]["position"]
    report.head = after if not rows else rows[-1]["position"]
    return report


def roles_that_can_change(conn: psycopg.Connection[Any], table: str) -> list[tuple[str, str]]:
    """(role, why) for bo_app and each role in it that could change `table` (an append-only one)."""
    found = conn.execute(SELECT_ROLES_THAT_CAN_CHANGE, {"table": table, "service_roles": list(SERVICE_ROLES)})
    return [(str(r[0]), str(r[1])) for r in found.fetchall()]


def _check_immutability(conn: psycopg.Connection[Any], report: VerifyReport) -> None:
    enabled = {r[0] for r in conn.execute(SELECT_TRIGGERS).fetchall()}
    for trigger in ("event_log_append_only", "event_log_no_truncate"):
        if trigger not in enabled:
            report.problems.append(f"trigger {trigger} is missing or disabled")
    for role, why in roles_that_can_change(conn, "bo.event_log"):
        report.problems.append(f"role {role} (a service role or a member of one) can change bo.event_log: it {why}")
    for group, stream, partition, next_offset in conn.execute(SELECT_MISSING_LAST_ROWS).fetchall():
        report.problems.append(f"{stream}[{partition}] offset {next_offset - 1}, recorded as logged for "
                               f"{group}, is missing from the log (rows deleted at the tail?)")


def _decoded(row: dict[str, Any]) -> LogRecord | None:
    """The row's raw bytes decoded again, as the append decoded them (None for an oversized stub)."""
    if row["oversized"]:
        return None
    return decode(KafkaCoordinates("-", 0, 0, None), _bytes(row["raw_key"]), _bytes(row["raw_value"]),
                  _headers(row["headers_json"]), max_value_bytes=2**62)


def _documents_unlike_raw(cur: psycopg.Cursor[dict[str, Any]], rows: list[dict[str, Any]],
                          decoded: list[LogRecord | None]) -> set[int]:
    storable = [row["position"] for row, record in zip(rows, decoded, strict=True)
                if record is not None and record.document is not None and not row["document_is_null"]]
    if not storable:
        return set()
    try:
        with cur.connection.transaction():
            return {r["position"] for r in cur.execute(SELECT_DOCUMENTS_UNLIKE_RAW, {"positions": storable})}
    except psycopg.errors.DataError:  # a document set on a row the server cannot parse: find it alone
        return {p for p in storable if _document_unlike_raw(cur, p)}


def _document_unlike_raw(cur: psycopg.Cursor[dict[str, Any]], position: int) -> bool:
    try:
        with cur.connection.transaction():
            return cur.execute(SELECT_DOCUMENTS_UNLIKE_RAW, {"positions": [position]}).fetchone() is not None
    except psycopg.errors.DataError:
        return True


def _check_row(previous: bytes | None, row: dict[str, Any], decoded: LogRecord | None,
               document_unlike_raw: bool) -> str | None:
    raw_key, raw_value = _bytes(row["raw_key"]), _bytes(row["raw_value"])
    digest = content_digest(
        source=row["source"], topic=row["topic"], partition=row["partition"],
        offset=row["offset"], kafka_timestamp=row["kafka_timestamp"], source_file=row["source_file"],
        source_line=row["source_line"], raw_key=raw_key, raw_value=raw_value,
        headers_json=row["headers_json"], value_size=row["value_size"],
        value_sha256=_bytes(row["value_sha256"]), oversized=row["oversized"],
    )
    expected = row_hash(previous, row["position"], time_field(row["ingested_at"]), digest)
    if expected != bytes(row["row_hash"]):
        return "row_hash does not match the row's content and the previous row's hash (edited, inserted or deleted)"
    if decoded is None:
        return None if row["document_is_null"] else "document is set, but the row is an oversized stub with no value"
    for name in DERIVED:
        if getattr(decoded, name) != row[name]:
            return f"{name} {row[name]!r} is not what the raw value says ({getattr(decoded, name)!r})"
    if decoded.document is None and not row["document_is_null"]:
        return "document is set, but the raw value is not a JSON object that jsonb stores"
    if decoded.document is not None and document_unlike_raw:
        return "document is not the raw value parsed (edited, or removed)"
    return None


def _bytes(value: Any) -> bytes | None:
    return None if value is None else bytes(value)


def _headers(headers_json: str) -> list[tuple[str, bytes | None]]:
    out: list[tuple[str, bytes | None]] = []
    for h in json.loads(headers_json):
        if "value_b64" in h:
            out.append((h["key"], base64.b64decode(h["value_b64"])))
        else:
            out.append((h["key"], None if h["value"] is None else h["value"].encode("utf-8")))
    return out
