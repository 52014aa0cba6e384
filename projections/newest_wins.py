"""Newest state wins (SPEC 4.1), decided event by event in log order: the pure core.

Given the keys already stored and a batch of events in position order, `decide` says
which events are APPLIED (their key beats the entity's key at that moment) and which
are SUPERSEDED, and returns the final winner per entity. Walking the batch in order
(instead of taking one maximum per batch) makes each event's fate independent of
where batch boundaries fall, so rebuilding with any batch size gives the same tables.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from projections.rules import OrderingKey

S = TypeVar("S")

APPLIED = "APPLIED"
SUPERSEDED = "SUPERSEDED"


@dataclass(frozen=True, slots=True)
class Candidate(Generic[S]):
    entity_id: str
    key: OrderingKey
    state: S


@dataclass
class Decision(Generic[S]):
    fates: dict[int, str] = field(default_factory=dict)
    winners: dict[str, Candidate[S]] = field(default_factory=dict)
    unversioned_applied: dict[str, int] = field(default_factory=dict)


def decide(stored: Mapping[str, OrderingKey], candidates: Sequence[Candidate[S]]) -> Decision[S]:
    """Fate of each candidate (by position) and the winner per entity among the applied."""
    decision: Decision[S] = Decision()
    current: dict[str, OrderingKey] = dict(stored)
    for candidate in candidates:
        best = current.get(candidate.entity_id)
        if best is None or candidate.key > best:
            current[candidate.entity_id] = candidate.key
            decision.winners[candidate.entity_id] = candidate
            decision.fates[candidate.key.position] = APPLIED
            if not candidate.key.has_version:
                counts = decision.unversioned_applied
                counts[candidate.entity_id] = counts.get(candidate.entity_id, 0) + 1
        else:
            decision.fates[candidate.key.position] = SUPERSEDED
    return decision
