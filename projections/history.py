"""An entity's history for auditors: every log row about it, with its fate in the active version.

`GET /admin/tx/{id}/history` and `GET /admin/payment-orders/{id}/history` (SPEC 5) read
here. The rows are the log's own (found by the entity id the log recorded at ingest,
unreadable rows by their Kafka key); the fate is what the *active* projector version did
with the row, derived for this one entity (projections/fates.py), with the dead letter's
reason. A row the version has not reached yet has no fate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row

from projections.fates import entity_fates
from projections.registry import active_with_history

# Keyset by position. Rows of the entity's own event type, and rows of no known type that
# carried its id as their key.
SELECT_HISTORY = """
    SELECT l.position, l.source, l.topic, l."partition", l."offset", l.source_file, l.source_line,
           l.event_id, l.event_type, l.ingested_at, l.raw_value, l.oversized,
           d.reason, d.detail, d.status AS dead_letter
      FROM bo.event_log l
      LEFT JOIN bo.dead_letters d
             ON d.position = l.position AND d.projector = %(name)s AND d.projector_version = %(version)s
     WHERE l.entity_id = %(entity_id)s
       AND (l.event_type = %(event_type)s
            OR l.event_type IS NULL OR l.event_type NOT IN ('LedgerEntryUpserted', 'PaymentOrderUpserted'))
       AND l.position > %(after)s
     ORDER BY l.position
     LIMIT %(limit)s
"""


@dataclass(frozen=True, slots=True)
class Subject:
    """Whose history: the read model that judges it and the event type that carries it."""

    projector: str
    event_type: str


TX = Subject("ledger_entries", "LedgerEntryUpserted")
PAYMENT_ORDER = Subject("payment_orders", "PaymentOrderUpserted")


def history_page(conn: psycopg.Connection[Any], subject: Subject, entity_id: str, after: int, limit: int
                 ) -> tuple[list[dict[str, Any]], int | None]:
    """Up to `limit` log rows after position `after`, and the position to continue after (None at the end)."""
    with conn.cursor(row_factory=dict_row) as cur:
        projector = active_with_history(cur, subject.projector)
        rows = cur.execute(SELECT_HISTORY, {
            "name": subject.projector, "version": projector.version, "entity_id": entity_id,
            "event_type": subject.event_type, "after": after, "limit": limit + 1,
        }).fetchall()
        page, more = rows[:limit], len(rows) > limit
        fates = entity_fates(cur, projector, entity_id, page)
    page = [{**row, "fate": fates[int(row["position"])]} for row in page]
    return page, int(page[-1]["position"]) if more else None
