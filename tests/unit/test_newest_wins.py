"""Newest state wins, event by event: fates and winners."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from projections.newest_wins import APPLIED, SUPERSEDED, Candidate, decide
from projections.rules import OrderingKey

T0 = datetime(2026, 2, 5, tzinfo=UTC)


def cand(entity: str, version: int | None, position: int) -> Candidate[str]:
    return Candidate(entity, OrderingKey.of(version, None, T0 + timedelta(seconds=position), position),
                     f"{entity}@{position}")


def test_stale_version_arriving_late_is_superseded() -> None:
    decision = decide({}, [cand("tx", 2, 1), cand("tx", 1, 2)])
    assert decision.fates == {1: APPLIED, 2: SUPERSEDED}
    assert decision.winners["tx"].state == "tx@1"


def test_event_older_than_the_stored_row_changes_nothing() -> None:
    stored = {"tx": OrderingKey.of(5, None, T0, 0)}
    decision = decide(stored, [cand("tx", 4, 1)])
    assert decision.fates == {1: SUPERSEDED}
    assert decision.winners == {}


def test_each_applied_event_counts_toward_its_fate_not_only_the_last() -> None:
    decision = decide({}, [cand("tx", 1, 1), cand("tx", 2, 2), cand("tx", 3, 3)])
    assert decision.fates == {1: APPLIED, 2: APPLIED, 3: APPLIED}
    assert decision.winners["tx"].state == "tx@3"


def test_unversioned_applied_events_are_counted_per_entity() -> None:
    decision = decide({}, [cand("a", None, 1), cand("a", None, 2), cand("b", 1, 3)])
    assert decision.unversioned_applied == {"a": 2}


def test_fates_do_not_depend_on_batch_boundaries() -> None:
    events = [cand("tx", v, p) for p, v in enumerate([3, 1, 4, 1, 5, 2], start=1)]
    whole = decide({}, events)
    first = decide({}, events[:2])
    stored = {e: c.key for e, c in first.winners.items()}
    second = decide(stored, events[2:])
    assert {**first.fates, **second.fates} == whole.fates
