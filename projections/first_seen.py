"""First-seen judgement of the Python engine: which valid events are the first valid occurrence
of their event_id in the log (SPEC 2 and 4.4), shared by the runner's Python engine and the
point-in-time reader (projections/as_of.py)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from projections import sql
from projections.batch import judge_row
from projections.contract import Rejection, ValidEvent
from projections.projector import DictCursor, LoggedEvent

DUPLICATE = "DUPLICATE"


def first_seen(
    cur: DictCursor,
    verdicts: Sequence[tuple[Mapping[str, Any], ValidEvent | Rejection]],
    fates: dict[int, str],
    rejections: dict[int, Rejection],
    judge: Callable[[Mapping[str, Any]], ValidEvent | Rejection] = judge_row,
) -> list[LoggedEvent]:
    """Valid events that are the first valid occurrence of their event_id in the log.

    A later occurrence with the same payload is a DUPLICATE (applied once); with a
    different payload it is a DUPLICATE_EVENT_ID_CONFLICT. Earlier occurrences are
    looked up in the log itself, so a conflict across topics or event types is seen
    by every projector alike.
    """
    first = _first_valid_occurrences(cur, verdicts, judge)
    fresh: list[LoggedEvent] = []
    for row, verdict in verdicts:
        position = int(row["position"])
        if isinstance(verdict, Rejection):
            rejections[position] = verdict
            continue
        event_id = verdict.envelope.event_id
        first_position, first_event = first[event_id]
        if first_position == position:
            fresh.append(LoggedEvent(position, row["ingested_at"], verdict))
        elif first_event.payload_sha256 == verdict.payload_sha256:
            fates[position] = DUPLICATE
        else:
            rejections[position] = Rejection(
                "DUPLICATE_EVENT_ID_CONFLICT",
                f"event_id: {event_id!r} was first logged at position {first_position}"
                " with a different payload",
                event_id,
            )
    return fresh


def _first_valid_occurrences(
    cur: DictCursor, verdicts: Sequence[tuple[Mapping[str, Any], ValidEvent | Rejection]],
    judge: Callable[[Mapping[str, Any]], ValidEvent | Rejection],
) -> dict[str, tuple[int, ValidEvent]]:
    """event_id → (position, event) of its earliest valid row, up to this batch's end."""
    occurrences: dict[str, tuple[int, ValidEvent]] = {}

    def note(event_id: str, position: int, event: ValidEvent) -> None:
        if event_id not in occurrences or position < occurrences[event_id][0]:
            occurrences[event_id] = (position, event)

    valid = [(int(row["position"]), v) for row, v in verdicts if isinstance(v, ValidEvent)]
    for position, verdict in valid:
        note(verdict.envelope.event_id, position, verdict)
    if valid:
        others = cur.execute(sql.SELECT_OTHER_OCCURRENCES, {
            "event_ids": sorted(occurrences),
            "up_to": max(int(row["position"]) for row, _ in verdicts),
            "taken": [int(row["position"]) for row, _ in verdicts],
        }).fetchall()
        for other in others:
            earlier = judge(other)
            if isinstance(earlier, ValidEvent) and earlier.envelope.event_id == other["event_id"]:
                note(other["event_id"], int(other["position"]), earlier)
    return occurrences

