"""Reading the dead letters (`bo dlq list`, `bo dlq show`): what was rejected, by whom, and why."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row

SELECT_DEAD_LETTERS = """
    SELECT d.id, d.projector, d.projector_version, d.position, d.event_id, d.reason, d.detail,
           d.status, d.created_at, d.resolved_at
      FROM bo.dead_letters d
     WHERE (%(reason)s::text IS NULL OR d.reason = %(reason)s::text)
       AND (%(projector)s::text IS NULL OR d.projector = %(projector)s::text)
       AND (%(status)s::text IS NULL OR d.status = %(status)s::text)
       AND d.id > %(after)s
     ORDER BY d.id
     LIMIT %(limit)s
"""

SELECT_DEAD_LETTER_WITH_ROW = """
    SELECT d.id, d.projector, d.projector_version, d.position, d.event_id, d.reason, d.detail,
           d.status, d.created_at, d.resolved_at,
           l.source, l.topic, l."partition", l."offset", l.source_file, l.source_line,
           l.kafka_timestamp, l.ingested_at, l.raw_key, l.raw_value, l.headers, l.value_size, l.oversized
      FROM bo.dead_letters d
      JOIN bo.event_log l USING (position)
     WHERE d.id = %(id)s
"""


@dataclass(frozen=True, slots=True)
class DeadLetterFilter:
    reason: str | None = None
    projector: str | None = None
    status: str | None = "OPEN"


def list_dead_letters(conn: psycopg.Connection[Any], where: DeadLetterFilter, *, after: int = 0,
                      limit: int = 100) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(SELECT_DEAD_LETTERS, {
            "reason": where.reason, "projector": where.projector, "status": where.status,
            "after": after, "limit": limit,
        }).fetchall()


def show_dead_letter(conn: psycopg.Connection[Any], dead_letter_id: int) -> dict[str, Any] | None:
    """The dead letter with the log row it points at; raw bytes as text when they are UTF-8."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(SELECT_DEAD_LETTER_WITH_ROW, {"id": dead_letter_id}).fetchone()
    if row is None:
        return None
    for column in ("raw_key", "raw_value"):
        row[column] = readable_bytes(row[column])
    return row


def readable_bytes(value: bytes | None) -> dict[str, str] | None:
    if value is None:
        return None
    try:
        return {"text": bytes(value).decode("utf-8")}
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(bytes(value)).decode("ascii")}
