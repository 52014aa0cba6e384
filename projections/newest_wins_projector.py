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

from projections.keys import NEWER_THAN_STORED, ordering_key, stored_keys
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

    @abstractmethod
    def row_sql(self) -> dict[str, sql.Composable]:
        """The read-table row as SQL over `b` (the batch row, see projections/batch.py) and
        `j.unversioned` (applied unversioned events of the entity in this batch): the same
        values as `row`, for the set-based path."""

    def apply_batch(self, cur: DictCursor) -> None:
        """Set-based `apply` over `bo_batch`: which events apply by a window over each entity's
        keys, then one upsert of each entity's winner. Same decisions as `decide`, event by event."""
        row = self.row_sql()
        cur.execute(APPLY_NEWEST_WINS.format(
            table=self.table(), id=sql.Identifier(self.id_column),
            key_b=ordering_key("b"), key_t=ordering_key("t"), handles=sql.Literal(sorted(self.handles)),
            columns=sql.SQL(", ").join(sql.Identifier(c) for c in row),
            values=sql.SQL(", ").join(row.values()),
            assignments=sql.SQL(", ").join(
                sql.SQL("{c} = EXCLUDED.{c}").format(c=sql.Identifier(c))
                for c in row if c not in (self.id_column, "version_missing_cnt")),
            newer=NEWER_THAN_STORED))

    def apply(self, cur: DictCursor, events: Sequence[LoggedEvent]) -> Mapping[int, str]:
        if not events:
            return {}
        candidates = [Candidate(self.entity_id(e), event_key(e), e) for e in events]
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


# One statement: each first-seen valid event of the batch is APPLIED when its key beats every
# earlier key of its entity (the stored row's included), as `decide` walks them in position
# order, and the last applied event of each entity (its newest state) is upserted. Fates are
# not stored: the history derives them for one entity (projections/fates.py). One statement
# keeps one plan, prepared once per connection.
APPLY_NEWEST_WINS = sql.SQL("""
    WITH candidates AS (
        SELECT b.position, b.entity_id, {key_b} AS key, b.version IS NULL AS unversioned
          FROM bo_batch b
         WHERE b.verdict = 'VALID' AND b.occurrence = 'FIRST' AND b.event_type = ANY({handles}::text[])
    ), timeline AS (
        SELECT position, entity_id, key, unversioned, true AS incoming FROM candidates
        UNION ALL
        SELECT t.position, t.{id}, {key_t}, false, false FROM {table} t
         WHERE t.{id} IN (SELECT entity_id FROM candidates)
    ), ordered AS (
        SELECT position, entity_id, incoming, unversioned,
               key > coalesce(max(key) OVER (PARTITION BY entity_id ORDER BY position
                                             ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING),
                              '{{-1}}'::bigint[]) AS applied
          FROM timeline
    ), j AS (
        SELECT position, entity_id, applied,
               count(*) FILTER (WHERE applied AND unversioned) OVER (PARTITION BY entity_id) AS unversioned
          FROM ordered WHERE incoming
    )
    INSERT INTO {table} AS t ({columns})
    SELECT DISTINCT ON (j.entity_id) {values}
      FROM j JOIN bo_batch b USING (position)
     WHERE j.applied
     ORDER BY j.entity_id, j.position DESC
    ON CONFLICT ({id}) DO UPDATE SET {assignments},
        version_missing_cnt = t.version_missing_cnt + EXCLUDED.version_missing_cnt
    WHERE {newer}
""")

# Every log row of the given entities (by the id the log recorded at ingest).
SELECT_ENTITY_POSITIONS = """
    SELECT position FROM bo.event_log
     WHERE entity_id = ANY(%(ids)s) AND event_type = ANY(%(event_types)s) AND position <= %(up_to)s
     ORDER BY position
"""


def event_key(event: LoggedEvent) -> OrderingKey:
    """The ordering key (SPEC 4.1) of a logged event: its version, updated_at, ingested_at, position."""
    payload = event.event.payload
    return OrderingKey.of(payload.version, payload.updated_at, event.ingested_at, event.position)
