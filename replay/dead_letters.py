"""Dead letters (`bo dlq list / show / replay`): what was rejected, by whom and why, and replaying them."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from eventsourcing.postgres import PostgresDatastore
from psycopg.rows import dict_row

from projections import registry
from projections.masking import mask_payload
from projections.runner import ProjectionRunner

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


def show_dead_letter(conn: psycopg.Connection[Any], dead_letter_id: int, *, unmask: bool = False
                     ) -> dict[str, Any] | None:
    """The dead letter with the log row it points at.

    The raw value is shown with the payload's personal fields masked when it is a JSON
    envelope; a value that is not cannot be masked field by field, so only its size and
    SHA-256 are shown. `unmask` shows the bytes as logged (as text when they are UTF-8).
    """
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(SELECT_DEAD_LETTER_WITH_ROW, {"id": dead_letter_id}).fetchone()
    if row is None:
        return None
    row["raw_key"] = readable_bytes(row["raw_key"])
    row["raw_value"] = readable_bytes(row["raw_value"]) if unmask else masked_value(row["raw_value"])
    return row


def masked_value(value: bytes | None) -> dict[str, Any] | None:
    """A logged value for an operator's eyes: the envelope with its payload masked, or its size and digest."""
    if value is None:
        return None
    raw = bytes(value)
    try:
        document = json.loads(raw)
    except ValueError:
        document = None
    if isinstance(document, dict) and isinstance(document.get("payload"), dict):
        return {"json_masked": {**document, "payload": mask_payload(document["payload"])}}
    return {"not_shown": f"{len(raw)} bytes, sha256 {hashlib.sha256(raw).hexdigest()} (not a JSON envelope:"
                         " it cannot be masked; --unmask shows it)"}


def readable_bytes(value: bytes | None) -> dict[str, str] | None:
    if value is None:
        return None
    try:
        return {"text": bytes(value).decode("utf-8")}
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(bytes(value)).decode("ascii")}


# Open dead letters of the versions that are maintained, by version, up to the filters.
SELECT_TO_REPLAY = """
    SELECT d.id, d.projector, d.projector_version, d.position
      FROM bo.dead_letters d
      JOIN bo.projectors p ON p.name = d.projector AND p.version = d.projector_version
     WHERE d.status = 'OPEN' AND p.status IN ('ACTIVE', 'READY', 'BUILDING')
       AND (%(reason)s::text IS NULL OR d.reason = %(reason)s::text)
       AND (%(projector)s::text IS NULL OR d.projector = %(projector)s::text)
       AND (%(ids)s::bigint[] IS NULL OR d.id = ANY(%(ids)s::bigint[]))
     ORDER BY d.projector, d.projector_version, d.position
"""

COUNT_OPEN = """
    SELECT count(*) AS n FROM bo.dead_letters
     WHERE projector = %(projector)s AND projector_version = %(version)s AND position = ANY(%(positions)s)
       AND status = 'OPEN'
"""


@dataclass
class ReplayReport:
    replayed: int = 0
    resolved: int = 0
    still_open: dict[str, int] | None = None


def replay_dead_letters(datastore: PostgresDatastore, topic_of: Mapping[str, str], where: DeadLetterFilter,
                        ids: Sequence[int] | None = None) -> ReplayReport:
    """SPEC 4.4: re-run the current projector code on the selected open dead letters.

    Those that now apply are marked RESOLVED (with any other open dead letter of the
    entities re-projected that now applies); the rest stay OPEN with the reason and detail
    the current code gives. Each projector version is replayed in one transaction (see
    `ProjectionRunner.replay`), so a failure leaves it as it was.
    """
    with datastore.transaction(commit=False) as cur:
        letters = cur.execute(SELECT_TO_REPLAY, {"reason": where.reason, "projector": where.projector,
                                                 "ids": list(ids) if ids else None}).fetchall()
    by_version: dict[tuple[str, int], list[int]] = {}
    for letter in letters:
        by_version.setdefault((letter["projector"], int(letter["projector_version"])), []).append(
            int(letter["position"]))
    report = ReplayReport(still_open={})
    for (name, version), positions in sorted(by_version.items()):
        projector = registry.declared(name, version)
        resolved = ProjectionRunner(datastore, [projector], topic_of).replay(projector, positions)
        report.replayed += len(positions)
        report.resolved += resolved
        with datastore.transaction(commit=False) as cur:
            still = cur.execute(COUNT_OPEN, {"projector": name, "version": version, "positions": positions}).fetchone()
        assert report.still_open is not None
        report.still_open[f"{name}:v{version}"] = int(still["n"]) if still else 0
    return report
