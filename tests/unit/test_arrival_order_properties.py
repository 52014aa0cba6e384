"""Property: for events with distinct versions, arrival order does not change the read tables.

Applies the same events in any order through the pure cores the projectors use
(`decide` for ledger entries and orders, `PairBook` for pairs) and compares the final
states. Timestamps that record arrival (first_seen_at, completed_at) are excluded: they
depend on arrival by definition.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from projections.newest_wins import Candidate, decide
from projections.pairs.book import LEDGER, ORDER, MemberState, PairBook
from projections.rules import OrderingKey

T0 = datetime(2026, 2, 5, tzinfo=UTC)


@dataclass(frozen=True)
class Change:
    kind: str
    entity_id: str
    version: int
    order_ref: str | None
    entry_type: str | None
    amount: Decimal
    currency: str


ORDERS = ["o1", "o2", "o3"]
amounts = st.sampled_from([Decimal("100"), Decimal("100.00"), Decimal("250.5")])
currencies = st.sampled_from(["KRW", "USD"])


@st.composite
def entity_changes(draw: Any, kind: str, entity_id: str) -> list[Change]:
    versions = draw(st.lists(st.integers(0, 20), min_size=1, max_size=4, unique=True))
    entry_type = draw(st.sampled_from(["DEBIT", "CREDIT"])) if kind == LEDGER else None
    changes = []
    for version in versions:
        ref = entity_id if kind == ORDER else draw(st.sampled_from([*ORDERS, None]))
        changes.append(Change(kind, entity_id, version, ref, entry_type, draw(amounts), draw(currencies)))
    return changes


@st.composite
def histories(draw: Any) -> list[Change]:
    changes: list[Change] = []
    for order_id in draw(st.lists(st.sampled_from(ORDERS), unique=True)):
        changes += draw(entity_changes(ORDER, order_id))
    for n in range(draw(st.integers(0, 5))):
        changes += draw(entity_changes(LEDGER, f"tx{n}"))
    return changes


def member(change: Change, position: int) -> MemberState:
    at = T0 + timedelta(seconds=position)
    return MemberState(change.kind, change.entity_id, change.order_ref, change.entry_type,
                       change.amount, change.currency, OrderingKey.of(change.version, None, at, position), at)


def final_state(changes: list[Change]) -> tuple[Any, Any]:
    book = PairBook([], {})
    for position, change in enumerate(changes, start=1):
        book.apply(member(change, position))
    pairs = {o: (p.status if p else None) for o, p in book.pairs.items() if p is not None}
    winners = decide({}, [Candidate(c.entity_id, member(c, i).key, c) for i, c in enumerate(changes, 1)])
    return pairs, {e: c.state for e, c in winners.winners.items()}


@settings(max_examples=300, deadline=None)
@given(histories(), st.randoms(use_true_random=False))
def test_any_arrival_order_of_distinct_versions_gives_the_same_tables(changes: list[Change],
                                                                       rnd: Any) -> None:
    shuffled = list(changes)
    rnd.shuffle(shuffled)
    assert final_state(shuffled) == final_state(changes)
