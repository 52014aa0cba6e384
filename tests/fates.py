"""Fates as the history derives them (projections/fates.py), read the way tests need them:
by event_id, or for every log row a version has read."""

from __future__ import annotations

from collections import defaultdict
from typing import Any, LiteralString

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from projections import registry
from projections.fates import entity_fates
from projections.newest_wins_projector import NewestWinsProjector

SELECT_ROWS: LiteralString = """
    SELECT l.position, l.entity_id, d.status AS dead_letter
      FROM bo.event_log l
      LEFT JOIN bo.dead_letters d
             ON d.position = l.position AND d.projector = %(name)s AND d.projector_version = %(version)s
     WHERE {} ORDER BY l.position
"""


def _projector(name: str, version: int) -> NewestWinsProjector:
    projector = registry.declared(name, version)
    assert isinstance(projector, NewestWinsProjector), f"{name} v{version} has no history"
    return projector


def fates_of(url: str, name: str, where: LiteralString, params: dict[str, object] | None = None, *,
             version: int = 1) -> dict[int, str | None]:
    """position → fate in `name` v`version` of the log rows (alias `l`) matching `where`."""
    projector = _projector(name, version)
    with psycopg.connect(url) as conn, conn.cursor(row_factory=dict_row) as cur:
        by_entity: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in cur.execute(sql.SQL(SELECT_ROWS).format(sql.SQL(where)), {
                "name": projector.name, "version": projector.version, **(params or {})}).fetchall():
            by_entity[row["entity_id"] or ""].append(row)
        fates: dict[int, str | None] = {}
        for entity_id, asked in by_entity.items():
            fates.update(entity_fates(cur, projector, entity_id, asked))
    return dict(sorted(fates.items()))


def fates_by_event_id(url: str, name: str, event_id: str, *, version: int = 1) -> list[str | None]:
    """The fates of every log row carrying `event_id`, in position order."""
    return list(fates_of(url, name, "l.event_id = %(event_id)s", {"event_id": event_id}, version=version).values())


def all_fates(url: str, name: str, *, version: int = 1) -> dict[int, str]:
    """position → fate of every log row `name` v`version` has a fate for (it read and took it)."""
    return {p: f for p, f in fates_of(url, name, "true", version=version).items() if f is not None}
