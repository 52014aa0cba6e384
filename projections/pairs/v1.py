"""Payment–ledger pairs, v1: loads the book for a batch, applies it in log order, writes back."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from psycopg import sql as psql

from projections.contract import LedgerEntryPayload, PaymentOrderPayload, ValidEvent, classify
from projections.keys import ordering_key
from projections.pairs import sql
from projections.pairs.book import LEDGER, ORDER, MemberKey, MemberState, PairBook, PairRow
from projections.projector import DictCursor, LoggedEvent, Projector
from projections.rules import OrderingKey, PairStatus, claims_payment_order


class PaymentLedgerPairsV1(Projector):
    """Payment–ledger pairs, v1."""

    name = "payment_ledger_pairs"
    version = 1
    handles = frozenset({"LedgerEntryUpserted", "PaymentOrderUpserted"})
    key_column = "order_id"
    tables = ("", "_members")

    def apply(self, cur: DictCursor, events: Sequence[LoggedEvent]) -> Mapping[int, str]:
        if not events:
            return {}
        incoming = [member_of(e) for e in events]
        book = self._load(cur, incoming)
        fates = {e.position: book.apply(m) for e, m in zip(events, incoming, strict=True)}
        self._save(cur, book)
        return fates

    def apply_batch(self, cur: DictCursor) -> None:
        """Set-based `apply` over `bo_batch` (see the statements in pairs/sql.py)."""
        names = {"members": self.table("_members"), "pairs": self.table(),
                 "key_b": ordering_key("b"), "key_m": ordering_key("m"), "replace_member": sql.REPLACE_MEMBER,
                 "replace_pair": sql.REPLACE_PAIR,
                 "handles": psql.Literal(sorted(self.handles)), "version": psql.Literal(self.version)}
        cur.execute(sql.DROP_STEPS)  # another pairs version may have run in this transaction
        cur.execute(sql.JUDGE_MEMBER_EVENTS.format(**names))
        for statement in (sql.MEMBER_STATES, sql.CHANGE_POINTS, sql.MEMBER_INTERVALS, sql.PAIR_STATUS_AT_CHANGES,
                          sql.SELECT_FINAL_PAIRS, sql.UPSERT_FINAL_PAIRS, sql.DELETE_EMPTY_PAIRS,
                          sql.UPSERT_FINAL_MEMBERS):
            cur.execute(statement.format(**names))

    def replay_scope(self, cur: DictCursor, events: Sequence[LoggedEvent], up_to: int) -> Sequence[int]:
        """The histories of the members of `events` and of every pair they were ever part of:
        a pair row's history (its completed_at) depends on every member it ever had."""
        return self.history_positions(cur, {member_of(e).member_key for e in events}, up_to)

    def history_positions(self, cur: DictCursor, members: set[MemberKey], up_to: int) -> list[int]:
        """Log positions (≤ up_to) of `members`, of every order they ever claimed, of every member
        that ever claimed one of those orders, and so on until nothing new."""
        members = set(members)
        expanded: set[MemberKey] = set()
        orders: set[str] = set()
        positions: set[int] = set()
        while todo := members - expanded:
            expanded |= todo
            rows = cur.execute(sql.SELECT_MEMBER_HISTORY, {
                "order_ids": sorted(i for k, i in todo if k == ORDER),
                "tx_ids": sorted(i for k, i in todo if k == LEDGER), "up_to": up_to}).fetchall()
            claimed: set[str] = set()
            for row in rows:
                positions.add(int(row["position"]))
                verdict = classify(row["raw_value"]) if not row["oversized"] else None
                if isinstance(verdict, ValidEvent) and verdict.envelope.event_type in self.handles:
                    ref = member_of(LoggedEvent(int(row["position"]), row["ingested_at"], verdict)).order_ref
                    if ref is not None and ref not in orders:
                        claimed.add(ref)
            orders |= claimed
            if claimed:
                members |= {(r["kind"], r["entity_id"]) for r in cur.execute(
                    sql.SELECT_CLAIMANTS, {"order_ids": sorted(claimed), "up_to": up_to}).fetchall()}
        return sorted(positions)

    def forget(self, cur: DictCursor, events: Sequence[LoggedEvent]) -> None:
        incoming = [member_of(e) for e in events]
        keys = sorted({m.member_key for m in incoming})
        stored_refs = cur.execute(sql.DELETE_MEMBERS.format(members=self.table("_members")),
                                  {"kinds": [k for k, _ in keys], "ids": [i for _, i in keys]}).fetchall()
        orders = {m.order_ref for m in incoming if m.order_ref}
        orders |= {r["order_ref"] for r in stored_refs if r["order_ref"]}
        cur.execute(sql.DELETE_PAIRS.format(pairs=self.table()), {"order_ids": sorted(orders)})

    def _load(self, cur: DictCursor, incoming: Sequence[MemberState]) -> PairBook:
        members_table, pairs_table = self.table("_members"), self.table()
        keys = sorted({m.member_key for m in incoming})
        known = cur.execute(
            sql.SELECT_MEMBERS_BY_KEY.format(members=members_table),
            {"kinds": [k for k, _ in keys], "ids": [i for _, i in keys]},
        ).fetchall()
        order_ids = sorted(
            {m.order_ref for m in incoming if m.order_ref} | {r["order_ref"] for r in known if r["order_ref"]}
        )
        rows = cur.execute(sql.SELECT_MEMBERS_BY_ORDER.format(members=members_table),
                           {"order_ids": order_ids}).fetchall()
        members = {(r["kind"], r["entity_id"]): _member_from_row(r) for r in [*known, *rows]}
        pairs = {
            r["order_id"]: _pair_from_row(r)
            for r in cur.execute(sql.SELECT_PAIRS.format(pairs=pairs_table),
                                 {"order_ids": order_ids}).fetchall()
        }
        return PairBook(members.values(), pairs)

    def _save(self, cur: DictCursor, book: PairBook) -> None:
        cur.executemany(sql.UPSERT_MEMBER.format(members=self.table("_members"), replace_member=sql.REPLACE_MEMBER), [
            _member_row(book.members[k]) for k in sorted(book.changed_members)
        ])
        kept = [book.pairs[o] for o in sorted(book.touched_orders)]
        cur.executemany(sql.UPSERT_PAIR.format(pairs=self.table(), replace_pair=sql.REPLACE_PAIR), [
            self._pair_row(p) for p in kept if p is not None
        ])
        gone = [o for o in sorted(book.touched_orders) if book.pairs[o] is None]
        if gone:
            cur.execute(sql.DELETE_PAIRS.format(pairs=self.table()), {"order_ids": gone})

    def _pair_row(self, pair: PairRow) -> dict[str, Any]:
        s = pair.status
        return {
            "order_id": pair.order_id, "order_present": s.order_present,
            "debit_tx_id": s.debit_tx_id, "credit_tx_id": s.credit_tx_id,
            "pairing_status": s.pairing_status, "missing": list(s.missing),
            "first_seen_at": pair.first_seen_at, "completed_at": pair.completed_at,
            "position": pair.position, "projector_version": self.version,
        }


def member_of(event: LoggedEvent) -> MemberState:
    """The pairing view of one event: an order, or a ledger leg and the order it claims."""
    p = event.event.payload
    key = OrderingKey.of(p.version, p.updated_at, event.ingested_at, event.position)
    if isinstance(p, PaymentOrderPayload):
        return MemberState(ORDER, p.order_id, p.order_id, None, p.amount, p.currency, key,
                           event.ingested_at)
    assert isinstance(p, LedgerEntryPayload)
    claims = claims_payment_order(p.related_id, p.related_type)
    return MemberState(LEDGER, p.tx_id, p.related_id if claims else None, p.entry_type,
                       p.amount, p.currency, key, event.ingested_at)


def _member_from_row(r: Mapping[str, Any]) -> MemberState:
    return MemberState(
        r["kind"], r["entity_id"], r["order_ref"], r["entry_type"], r["amount"], r["currency"],
        OrderingKey.of(r["version"], r["updated_at"], r["ingested_at"], r["position"]),
        r["first_seen_at"],
    )


def _member_row(m: MemberState) -> dict[str, Any]:
    return {
        "kind": m.kind, "entity_id": m.entity_id, "order_ref": m.order_ref,
        "entry_type": m.entry_type, "amount": m.amount, "currency": m.currency,
        "version": m.key.version if m.key.has_version else None,
        "updated_at": m.key.updated_at if m.key.has_updated_at else None,
        "ingested_at": m.key.ingested_at, "position": m.key.position,
        "first_seen_at": m.first_seen_at,
    }


def _pair_from_row(r: Mapping[str, Any]) -> PairRow:
    status = PairStatus(r["order_present"], r["debit_tx_id"], r["credit_tx_id"],
                        r["pairing_status"], tuple(r["missing"]))
    return PairRow(r["order_id"], status, r["first_seen_at"], r["completed_at"], r["position"])
