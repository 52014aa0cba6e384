"""Each log row's fate in a projector version, derived on read for one entity (not stored).

The history (projections/history.py, SPEC 5) shows what the active version did with every
log row about an entity: APPLIED, SUPERSEDED, DUPLICATE or DEAD_LETTERED, and no fate for
a row the version has not reached yet. No table records that per row (migration 0010):
the fates follow from what the projection itself follows from, for the entity's own rows up
to the version's checkpoint, with the projectors' own code (the Python engine's pure cores):

- a row with an open dead letter of the version is DEAD_LETTERED (that is what the version
  did with it, even when the code now in place would accept it: only a replay changes it);
- otherwise the contract's verdict: a rejection is DEAD_LETTERED;
- a valid row that is not the first valid occurrence of its event_id (projections/first_seen.py)
  is DUPLICATE, or DEAD_LETTERED when its payload differs (DUPLICATE_EVENT_ID_CONFLICT);
- the first-seen valid rows are walked in position order by newest wins (`decide`, from
  nothing): APPLIED when the row's ordering key beats every earlier one, else SUPERSEDED.

Newest wins walked event by event gives each row the same fate whatever the batch
boundaries were (projections/newest_wins.py), and a replay re-projects an entity's whole
history in position order: so walking the entity's rows once, from position 0, gives the
fates the version's batches gave. Rows of no readable type that carried the entity's id as
their key are DEAD_LETTERED when the version dead-lettered them (it took them), else have
no fate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from projections.batch import judge_row
from projections.contract import Rejection, ValidEvent
from projections.first_seen import first_seen
from projections.newest_wins import Candidate, decide
from projections.newest_wins_projector import NewestWinsProjector, event_key
from projections.projector import DictCursor

DEAD_LETTERED: Final = "DEAD_LETTERED"

# The version's checkpoint, and the entity's own rows up to it (of the event types the version
# handles) with their dead letters' status: one round trip.
SELECT_OWN_ROWS = """
    SELECT r.up_to, o.*
      FROM (SELECT coalesce(max(notification_id), 0) AS up_to
              FROM bo.projection_tracking WHERE application_name = %(tracking)s) r
      LEFT JOIN LATERAL (
            SELECT l.position, l.ingested_at, l.source, l.topic, l.event_type, l.raw_value, l.oversized,
                   l.value_size, d.status AS dead_letter
              FROM bo.event_log l
              LEFT JOIN bo.dead_letters d
                     ON d.position = l.position AND d.projector = %(name)s AND d.projector_version = %(version)s
             WHERE l.entity_id = %(entity_id)s AND l.event_type = ANY(%(event_types)s) AND l.position <= r.up_to
      ) o ON true
     ORDER BY o.position
"""


def entity_fates(cur: DictCursor, projector: NewestWinsProjector, entity_id: str,
                 asked: Sequence[Mapping[str, Any]]) -> dict[int, str | None]:
    """The fate in `projector` of each of the `asked` log rows about `entity_id` (each with its
    `position` and `dead_letter`: the status of the version's dead letter of it, or None); None
    where the version has not read the row yet or did not take it."""
    found = cur.execute(SELECT_OWN_ROWS, {
        "tracking": projector.tracking_name(), "name": projector.name, "version": projector.version,
        "entity_id": entity_id, "event_types": sorted(projector.handles)}).fetchall()
    reached = int(found[0]["up_to"]) if found else 0
    walked = _walk(cur, projector, entity_id, [r for r in found if r["position"] is not None])
    fates: dict[int, str | None] = {}
    for row in asked:
        position = int(row["position"])
        if position > reached:
            fates[position] = None
        else:
            fates[position] = walked.get(position, DEAD_LETTERED if row["dead_letter"] is not None else None)
    return fates


def _walk(cur: DictCursor, projector: NewestWinsProjector, entity_id: str, own: Sequence[Mapping[str, Any]]
          ) -> dict[int, str]:
    """The fates of the entity's own rows, in position order."""
    fates = {int(r["position"]): DEAD_LETTERED for r in own if r["dead_letter"] == "OPEN"}
    verdicts: list[tuple[Mapping[str, Any], ValidEvent | Rejection]] = [
        (row, judge_row(row)) for row in own if int(row["position"]) not in fates]
    rejections: dict[int, Rejection] = {}
    fresh = first_seen(cur, verdicts, fates, rejections) if verdicts else []
    fates.update(dict.fromkeys(rejections, DEAD_LETTERED))
    candidates = [Candidate(entity_id, event_key(e), e)
                  for e in fresh if projector.entity_id(e) == entity_id]
    fates.update(decide({}, candidates).fates)
    return fates

