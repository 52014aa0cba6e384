"""The pure rules of SPEC 4.1–4.3: ordering key, defaults, status groups, pairing status.

No I/O here. The projectors and the point-in-time reader share these functions, so the
rules are written once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

STATUS_GROUPS: dict[str, frozenset[str]] = {
    "SUCCESS": frozenset({"SUCCESS", "SUCCEEDED", "COMPLETED", "POSTED", "PAID", "CAPTURED", "SETTLED"}),
    "PENDING": frozenset({"PENDING", "CREATED", "PROCESSING", "AUTHORIZED", "REQUESTED"}),
    "FAILED": frozenset({"FAILED", "DECLINED", "REJECTED", "ERROR", "EXPIRED"}),
    "CANCELED": frozenset({"CANCELED", "CANCELLED", "REVERSED", "REFUNDED", "VOIDED"}),
}
_GROUP_OF = {status: group for group, statuses in STATUS_GROUPS.items() for status in statuses}

PAYMENT_ORDER = "PAYMENT_ORDER"
MISSING_ORDER = ("PAYMENT_ORDER", "DEBIT", "CREDIT")
_NEVER = datetime.min.replace(tzinfo=UTC)


def status_group(status: str) -> str:
    """SPEC 4.2: the group of a status, compared case-insensitively; `UNKNOWN` otherwise."""
    if not status.isascii():  # "paıd".upper() == "PAID": only ASCII statuses can match
        return "UNKNOWN"
    return _GROUP_OF.get(status.upper(), "UNKNOWN")


def resolved_related_type(related_id: str | None, related_type: str | None) -> str:
    """SPEC 4.2: the value sent; else PAYMENT_ORDER when related_id is present; else UNKNOWN."""
    if related_type is not None:
        return related_type
    return PAYMENT_ORDER if related_id is not None else "UNKNOWN"


def claims_payment_order(related_id: str | None, related_type: str | None) -> bool:
    """SPEC 4.3: a ledger entry belongs to a pair only with a related_id and a resolved
    related_type of PAYMENT_ORDER; anything else is UNPAIRED."""
    return related_id is not None and resolved_related_type(related_id, related_type) == PAYMENT_ORDER


@dataclass(frozen=True, slots=True, order=True)
class OrderingKey:
    """SPEC 4.1: (version, updated_at, ingested_at, position), a missing value lowest.

    Encoded so that plain tuple comparison is the rule: each optional part is preceded
    by a flag saying whether it is present.
    """

    has_version: bool
    version: int
    has_updated_at: bool
    updated_at: datetime
    ingested_at: datetime
    position: int

    @classmethod
    def of(cls, version: int | None, updated_at: datetime | None, ingested_at: datetime,
           position: int) -> OrderingKey:
        return cls(
            version is not None, version if version is not None else 0,
            updated_at is not None, updated_at if updated_at is not None else _NEVER,
            ingested_at, position,
        )


@dataclass(frozen=True, slots=True)
class Member:
    """What pairing needs to know of an order or a ledger leg."""

    entity_id: str
    amount: Decimal
    currency: str


@dataclass(frozen=True, slots=True)
class PairStatus:
    order_present: bool
    debit_tx_id: str | None
    credit_tx_id: str | None
    pairing_status: str
    missing: tuple[str, ...]


def pair_status(order: Member | None, debits: Iterable[Member], credits: Iterable[Member]) -> PairStatus:
    """SPEC 4.3. Two entries claiming one leg is a MISMATCH whether or not the rest is present."""
    debit_list = sorted(debits, key=lambda m: m.entity_id)
    credit_list = sorted(credits, key=lambda m: m.entity_id)
    present = {"PAYMENT_ORDER": order is not None, "DEBIT": bool(debit_list), "CREDIT": bool(credit_list)}
    missing = tuple(part for part in MISSING_ORDER if not present[part])
    debit = debit_list[0] if debit_list else None
    credit = credit_list[0] if credit_list else None
    if len(debit_list) > 1 or len(credit_list) > 1:
        status = "MISMATCH"
    elif order is None or debit is None or credit is None:
        status = "PARTIAL"
    elif len({order.amount, debit.amount, credit.amount}) == 1 and \
            len({order.currency, debit.currency, credit.currency}) == 1:
        status = "COMPLETE"
    else:
        status = "MISMATCH"
    return PairStatus(order is not None, debit.entity_id if debit else None,
                      credit.entity_id if credit else None, status, missing)
