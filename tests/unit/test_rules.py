"""SPEC 4.1–4.3 as tables of cases: status groups, related_type defaults, ordering key, pairing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from projections.rules import Member, OrderingKey, pair_status, resolved_related_type, status_group

T0 = datetime(2026, 2, 5, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(("status", "group"), [
    ("POSTED", "SUCCESS"), ("paid", "SUCCESS"), ("Settled", "SUCCESS"), ("SUCCEEDED", "SUCCESS"),
    ("COMPLETED", "SUCCESS"), ("CAPTURED", "SUCCESS"), ("SUCCESS", "SUCCESS"),
    ("PENDING", "PENDING"), ("created", "PENDING"), ("PROCESSING", "PENDING"),
    ("AUTHORIZED", "PENDING"), ("REQUESTED", "PENDING"),
    ("FAILED", "FAILED"), ("declined", "FAILED"), ("REJECTED", "FAILED"), ("ERROR", "FAILED"),
    ("EXPIRED", "FAILED"),
    ("CANCELED", "CANCELED"), ("cancelled", "CANCELED"), ("REVERSED", "CANCELED"),
    ("REFUNDED", "CANCELED"), ("VOIDED", "CANCELED"),
    ("WEIRD_STATUS", "UNKNOWN"), ("", "UNKNOWN"), ("POSTED ", "UNKNOWN"),
])
def test_status_is_grouped_case_insensitively(status: str, group: str) -> None:
    assert status_group(status) == group


@pytest.mark.parametrize(("related_id", "related_type", "resolved"), [
    ("ord-1", "PAYMENT_ORDER", "PAYMENT_ORDER"),
    ("ord-1", None, "PAYMENT_ORDER"),
    ("adj-9", "MANUAL_ADJUSTMENT", "MANUAL_ADJUSTMENT"),
    (None, None, "UNKNOWN"),
    (None, "FEE", "FEE"),
])
def test_related_type_defaults(related_id: str | None, related_type: str | None, resolved: str) -> None:
    assert resolved_related_type(related_id, related_type) == resolved


def key(version: int | None, updated: int | None, ingested: int, position: int) -> OrderingKey:
    return OrderingKey.of(
        version,
        T0 + timedelta(seconds=updated) if updated is not None else None,
        T0 + timedelta(seconds=ingested),
        position,
    )


@pytest.mark.parametrize(("higher", "lower", "why"), [
    (key(2, 0, 0, 1), key(1, 9, 9, 9), "a greater version wins over everything after it"),
    (key(0, None, 0, 1), key(None, 9, 9, 9), "a versioned event beats an unversioned one"),
    (key(None, 5, 0, 1), key(None, 4, 9, 9), "without versions updated_at decides"),
    (key(None, 0, 0, 1), key(None, None, 9, 9), "a present updated_at beats a missing one"),
    (key(None, None, 2, 1), key(None, None, 1, 9), "then the last ingested wins"),
    (key(None, None, 1, 9), key(None, None, 1, 8), "then the greater position"),
    (key(3, 1, 1, 2), key(3, 1, 1, 1), "equal up to position: position decides"),
])
def test_ordering_key_compares_left_to_right_missing_lowest(
    higher: OrderingKey, lower: OrderingKey, why: str
) -> None:
    assert higher > lower, why
    assert not lower > higher, why


def m(entity_id: str, amount: str = "100", currency: str = "KRW") -> Member:
    return Member(entity_id, Decimal(amount), currency)


@pytest.mark.parametrize(("order", "debits", "credits", "status", "missing"), [
    (m("o"), [m("d")], [m("c")], "COMPLETE", ()),
    (m("o", "100.00"), [m("d", "100")], [m("c", "100.0")], "COMPLETE", ()),
    (m("o"), [m("d")], [m("c", "99")], "MISMATCH", ()),
    (m("o"), [m("d")], [m("c", currency="USD")], "MISMATCH", ()),
    (m("o"), [m("d1"), m("d2")], [m("c")], "MISMATCH", ()),
    (None, [m("d1"), m("d2")], [], "MISMATCH", ("PAYMENT_ORDER", "CREDIT")),
    (None, [m("d")], [], "PARTIAL", ("PAYMENT_ORDER", "CREDIT")),
    (m("o"), [], [], "PARTIAL", ("DEBIT", "CREDIT")),
    (None, [m("d")], [m("c")], "PARTIAL", ("PAYMENT_ORDER",)),
    (m("o"), [], [m("c")], "PARTIAL", ("DEBIT",)),
])
def test_pair_status(order: Member | None, debits: list[Member], credits: list[Member], status: str,
                     missing: tuple[str, ...]) -> None:
    result = pair_status(order, debits, credits)
    assert result.pairing_status == status
    assert result.missing == missing
    assert result.order_present is (order is not None)


def test_pair_names_the_lowest_tx_id_when_two_entries_claim_a_leg() -> None:
    result = pair_status(m("o"), [m("tx-b"), m("tx-a")], [m("tx-c")])
    assert (result.debit_tx_id, result.credit_tx_id) == ("tx-a", "tx-c")
