"""The pure core of pairing (SPEC 4.3): members evolved event by event, pair rows recomputed.

A `PairBook` holds the members (orders and ledger legs) of a set of payment order ids
and the pair rows built from them. `apply` takes one valid event in log order: it
decides newest-wins for that member, moves the member between orders if its
related_id changed, and recomputes the pair rows it touches. No I/O: the projector
loads the book, applies a batch, and writes back what changed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from projections.newest_wins import APPLIED, SUPERSEDED
from projections.rules import Member, OrderingKey, PairStatus, pair_status

ORDER = "ORDER"
LEDGER = "LEDGER"
MemberKey = tuple[str, str]


@dataclass(frozen=True, slots=True)
class MemberState:
    kind: str
    entity_id: str
    order_ref: str | None
    entry_type: str | None
    amount: Decimal
    currency: str
    key: OrderingKey
    first_seen_at: datetime

    @property
    def member_key(self) -> MemberKey:
        return (self.kind, self.entity_id)


@dataclass(frozen=True, slots=True)
class PairRow:
    order_id: str
    status: PairStatus
    first_seen_at: datetime
    completed_at: datetime | None
    position: int


class PairBook:
    def __init__(self, members: Iterable[MemberState], pairs: Mapping[str, PairRow]) -> None:
        self.members: dict[MemberKey, MemberState] = {}
        self.by_order: dict[str, set[MemberKey]] = {}
        for member in members:
            self._put(member)
        self.pairs: dict[str, PairRow | None] = dict(pairs)
        self.changed_members: set[MemberKey] = set()
        self.touched_orders: set[str] = set()

    def apply(self, incoming: MemberState) -> str:
        """Newest wins for the member; recompute the pairs it leaves and joins. Returns the fate."""
        old = self.members.get(incoming.member_key)
        if old is not None and not incoming.key > old.key:
            return SUPERSEDED
        new = replace(incoming, first_seen_at=old.first_seen_at) if old else incoming
        if old is not None:
            self._remove(old)
        self._put(new)
        self.changed_members.add(new.member_key)
        refs = {ref for ref in (old.order_ref if old else None, new.order_ref) if ref is not None}
        for ref in sorted(refs):
            self._recompute(ref, incoming.key.ingested_at, incoming.key.position)
        return APPLIED

    def _recompute(self, order_id: str, at: datetime, position: int) -> None:
        self.touched_orders.add(order_id)
        members = [self.members[k] for k in sorted(self.by_order.get(order_id, ()))]
        if not members:
            self.pairs[order_id] = None
            return
        order = next((Member(m.entity_id, m.amount, m.currency)
                      for m in members if m.kind == ORDER), None)
        legs = [m for m in members if m.kind == LEDGER]
        status = pair_status(
            order,
            [Member(m.entity_id, m.amount, m.currency) for m in legs if m.entry_type == "DEBIT"],
            [Member(m.entity_id, m.amount, m.currency) for m in legs if m.entry_type == "CREDIT"],
        )
        previous = self.pairs.get(order_id)
        completed_at = previous.completed_at if previous is not None else None
        if completed_at is None and status.pairing_status == "COMPLETE":
            completed_at = at
        self.pairs[order_id] = PairRow(
            order_id, status, min(m.first_seen_at for m in members), completed_at, position
        )

    def _put(self, member: MemberState) -> None:
        self.members[member.member_key] = member
        if member.order_ref is not None:
            self.by_order.setdefault(member.order_ref, set()).add(member.member_key)

    def _remove(self, member: MemberState) -> None:
        del self.members[member.member_key]
        if member.order_ref is not None:
            self.by_order.get(member.order_ref, set()).discard(member.member_key)
