"""Point-in-time state (SPEC 5, `?as_of=T`): a record as the active version would have shown it
had the log ended at T.

Positions and ingested_at grow together (eventstore/log.py takes the clock under the append
lock), so "the log rows ingested up to T" are the rows up to one position, the *cut*. The
state is computed from the entity's own log rows up to the cut with the projectors' own
code, the Python engine's: the contract's verdicts, the first-seen judgement
(projections/first_seen.py), newest wins (`decide`), the version's `row`, and, for the
pairing, a `PairBook` over every member that was ever part of the pair. Nothing here
restates a rule.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from projections import sql
from projections.batch import judge_row
from projections.contract import Rejection, ValidEvent
from projections.first_seen import first_seen
from projections.newest_wins import Candidate, decide
from projections.newest_wins_projector import SELECT_ENTITY_POSITIONS, NewestWinsProjector, event_key
from projections.pairs import sql as pair_sql
from projections.pairs.book import LEDGER, ORDER, PairBook, PairRow
from projections.pairs.v1 import PaymentLedgerPairsV1, member_of
from projections.projector import DictCursor, LoggedEvent
from projections.registry import active_with_history
from projections.rules import claims_payment_order

SELECT_CUT = "SELECT coalesce(max(position), 0) AS cut FROM bo.event_log WHERE ingested_at <= %(at)s"
SELECT_SOURCE = """
    SELECT position, source, topic, "partition", "offset", source_file, source_line
      FROM bo.event_log WHERE position = %(position)s
"""
PAIRING_FIELDS = ("pairing_status", "debit_tx_id", "credit_tx_id", "missing")


def tx_as_of(conn: psycopg.Connection[Any], tx_id: str, at: datetime) -> dict[str, Any] | None:
    """The ledger entry with its pairing and source, as of `at`; None if it did not exist yet."""
    with conn.cursor(row_factory=dict_row) as cur:
        cut = _cut(cur, at)
        row = _entity_row(cur, active_with_history(cur, "ledger_entries"), tx_id, cut)
        if row is None:
            return None
        pair = pair_as_of(cur, row["related_id"], cut) \
            if claims_payment_order(row["related_id"], row["related_type"]) else None
        return {**row, **_pairing(pair), **_source(cur, row["position"])}


def order_as_of(conn: psycopg.Connection[Any], order_id: str, at: datetime
                ) -> tuple[dict[str, Any] | None, PairRow | None, list[dict[str, Any]]] | None:
    """The order (masked), its pair and its ledger entries as of `at`; None if none existed yet."""
    with conn.cursor(row_factory=dict_row) as cur:
        cut = _cut(cur, at)
        order = _entity_row(cur, active_with_history(cur, "payment_orders"), order_id, cut)
        pair, legs = _pair_and_legs(cur, order_id, cut)
        ledger = active_with_history(cur, "ledger_entries")
        entries = [entry for tx_id in legs if (entry := _entity_row(cur, ledger, tx_id, cut)) is not None]
        if order is None and not entries:
            return None
        if order is not None:
            order = {**order, **_source(cur, order["position"])}
        entries = [{**e, **_pairing(pair), **_source(cur, e["position"])} for e in entries]
        return order, pair, sorted(entries, key=lambda e: (e["booked_at"], e["tx_id"]))


def pair_as_of(cur: DictCursor, order_id: str, cut: int) -> PairRow | None:
    return _pair_and_legs(cur, order_id, cut)[0]


def _pair_and_legs(cur: DictCursor, order_id: str, cut: int) -> tuple[PairRow | None, list[str]]:
    pairs = PaymentLedgerPairsV1()
    seeds = {(ORDER, order_id)} | {(r["kind"], r["entity_id"]) for r in cur.execute(
        pair_sql.SELECT_CLAIMANTS, {"order_ids": [order_id], "up_to": cut}).fetchall()}
    positions = pairs.history_positions(cur, seeds, cut)
    book = PairBook([], {})
    for event in _first_seen_events(cur, positions, pairs.handles):
        book.apply(member_of(event))
    legs = sorted(i for k, i in book.by_order.get(order_id, set()) if k == LEDGER)
    return book.pairs.get(order_id), legs


def _entity_row(cur: DictCursor, projector: NewestWinsProjector, entity_id: str, cut: int) -> dict[str, Any] | None:
    positions = [int(r["position"]) for r in cur.execute(SELECT_ENTITY_POSITIONS, {
        "ids": [entity_id], "event_types": sorted(projector.handles), "up_to": cut}).fetchall()]
    events = [e for e in _first_seen_events(cur, positions, projector.handles) if projector.entity_id(e) == entity_id]
    if not events:
        return None
    decision = decide({}, [Candidate(entity_id, event_key(e), e) for e in events])
    return projector.row(decision.winners[entity_id].state, decision.unversioned_applied.get(entity_id, 0))


def _first_seen_events(cur: DictCursor, positions: Sequence[int], handles: frozenset[str]) -> list[LoggedEvent]:
    rows = cur.execute(sql.SELECT_LOG_AT, {"positions": list(positions)}).fetchall()
    verdicts: list[tuple[Mapping[str, Any], ValidEvent | Rejection]] = [
        (row, judge_row(row)) for row in rows if row["event_type"] in handles]
    fresh = first_seen(cur, verdicts, {}, {})
    return [e for e in fresh if e.event.envelope.event_type in handles]


def _cut(cur: DictCursor, at: datetime) -> int:
    row = cur.execute(SELECT_CUT, {"at": at}).fetchone()
    return int(row["cut"]) if row else 0


def _source(cur: DictCursor, position: int) -> dict[str, Any]:
    row = cur.execute(SELECT_SOURCE, {"position": position}).fetchone()
    return dict(row) if row else {}


def _pairing(pair: PairRow | None) -> dict[str, Any]:
    if pair is None:
        return dict.fromkeys(PAIRING_FIELDS)
    s = pair.status
    return {"pairing_status": s.pairing_status, "debit_tx_id": s.debit_tx_id, "credit_tx_id": s.credit_tx_id,
            "missing": list(s.missing)}


def pair_mapping(pair: PairRow, version: int = 1) -> dict[str, Any]:
    """A pair row as the read table holds it (what the API's representation reads)."""
    s = pair.status
    return {"order_id": pair.order_id, "order_present": s.order_present, "debit_tx_id": s.debit_tx_id,
            "credit_tx_id": s.credit_tx_id, "pairing_status": s.pairing_status, "missing": list(s.missing),
            "first_seen_at": pair.first_seen_at, "completed_at": pair.completed_at, "position": pair.position,
            "projector_version": version}
