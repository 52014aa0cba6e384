"""Reading the access audit trail (`bo.access_audit`, migration 0004) for `GET /admin/audit-log`.

Newest first, keyset-paged by id (ids only grow), filterable by actor, resource and time.
Writing the trail belongs to authentication (the security issue).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

SELECT_AUDIT_PAGE = """
    SELECT id, at, actor, roles, method, path, resource, query, status, correlation_id
      FROM bo.access_audit
     WHERE (%(actor)s::text IS NULL OR actor = %(actor)s::text)
       AND (%(resource)s::text IS NULL OR resource = %(resource)s::text)
       AND (%(from)s::timestamptz IS NULL OR at >= %(from)s::timestamptz)
       AND (%(to)s::timestamptz IS NULL OR at < %(to)s::timestamptz)
       AND (%(before)s::bigint IS NULL OR id < %(before)s::bigint)
     ORDER BY id DESC
     LIMIT %(limit)s
"""


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
