"""A projector whose read table holds one row per entity, the newest state winning (SPEC 4.1).

Subclasses say which payload field is the entity id, how an event becomes a row, and
which upsert writes it; the batch logic (stored keys → `decide` → one upsert per
winner) is written once here.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from psycopg import sql

from projections.keys import stored_keys
from projections.newest_wins import Candidate, decide
from projections.projector import DictCursor, LoggedEvent, Projector
from projections.rules import OrderingKey


class NewestWinsProjector(Projector):
    id_column: ClassVar[str]

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        if "id_column" in cls.__dict__:
            cls.key_column = cls.id_column

    @abstractmethod
    def entity_id(self, event: LoggedEvent) -> str: ...

    @abstractmethod
    def row(self, event: LoggedEvent, unversioned_applied: int) -> dict[str, Any]:
        """The read-table row for `event`, counting the batch's applied unversioned events."""

    @abstractmethod
    def upsert(self) -> sql.Composed: ...

    def apply(self, cur: DictCursor, events: Sequence[LoggedEvent]) -> Mapping[int, str]:
        if not events:
            return {}
        candidates = [Candidate(self.entity_id(e), _key(e), e) for e in events]
        stored = stored_keys(cur, self.table(), self.id_column, [c.entity_id for c in candidates])
        decision = decide(stored, candidates)
        cur.executemany(self.upsert(), [
            self.row(c.state, decision.unversioned_applied.get(c.entity_id, 0))
            for c in decision.winners.values()
        ])
        return decision.fates


    def replay_scope(self, cur: DictCursor, events: Sequence[LoggedEvent], up_to: int) -> Sequence[int]:
        # Newest wins is per entity: an entity's whole history decides its row.
        ids = sorted({self.entity_id(e) for e in events})
        rows = cur.execute(SELECT_ENTITY_POSITIONS, {
            "event_types": sorted(self.handles), "ids": ids, "up_to": up_to}).fetchall()
        return [int(r["position"]) for r in rows]

    def forget(self, cur: DictCursor, events: Sequence[LoggedEvent]) -> None:
        cur.execute(sql.SQL("DELETE FROM {table} WHERE {id} = ANY(%(ids)s)").format(
            table=self.table(), id=sql.Identifier(self.id_column)),
            {"ids": sorted({self.entity_id(e) for e in events})})


# Every log row of the given entities (by the id the log recorded at ingest).
SELECT_ENTITY_POSITIONS = """
    SELECT position FROM bo.event_log
     WHERE entity_id = ANY(%(ids)s) AND event_type = ANY(%(event_types)s) AND position <= %(up_to)s
     ORDER BY position
"""


def _key(event: LoggedEvent) -> OrderingKey:
    payload = event.event.payload
    return OrderingKey.of(payload.version, payload.updated_at, event.ingested_at, event.position)
