"""A realistic generated event stream for `bo demo` and the benchmarks.

Each payment is an order plus a DEBIT and a CREDIT leg, most with several versions
(PENDING → POSTED/PAID, some later REFUNDED). The stream is shuffled within a window so
versions and topics arrive out of order, and it contains duplicate deliveries, partial
and mismatched payments, unversioned updates and invalid messages, in fixed shares.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from bo.publish import OutgoingMessage

CURRENCIES = (("KRW", 0), ("USD", 2), ("EUR", 2), ("JPY", 0))
METHODS = ("CARD", "BANK_TRANSFER", "WALLET")
NAMES = ("Kim Minji", "Lee Jun", "Park Seo", "Choi Ara", "Jane Doe", "Sam Lee")


@dataclass(frozen=True, slots=True)
class StreamShape:
    payments: int = 2000
    seed: int = 7
    first_payment: int = 0  # the number of the first payment: ids and times continue from there
    duplicate_share: float = 0.03
    invalid_share: float = 0.01
    partial_share: float = 0.05
    mismatch_share: float = 0.02
    unversioned_share: float = 0.03
    shuffle_window: int = 40


def generate(shape: StreamShape, ledger_topic: str, orders_topic: str) -> Iterator[OutgoingMessage]:
    rng = random.Random(shape.seed)
    window: list[OutgoingMessage] = []
    for message in _messages(shape, rng, ledger_topic, orders_topic):
        window.append(message)
        if len(window) >= shape.shuffle_window:
            yield window.pop(rng.randrange(len(window)))
    rng.shuffle(window)
    yield from window


def _messages(shape: StreamShape, rng: random.Random, ledger_topic: str, orders_topic: str
              ) -> Iterator[OutgoingMessage]:
    start = datetime(2026, 2, 1, tzinfo=UTC)
    counter = 0
    for n in range(shape.first_payment, shape.first_payment + shape.payments):
        at = start + timedelta(seconds=n * 7)
        for topic, key, value in _payment(shape, rng, n, at):
            counter += 1
            message = OutgoingMessage(topic=ledger_topic if topic == "ledger" else orders_topic,
                                      key=key.encode(), value=value.encode(), headers=[
                                          ("x-correlation-id", f"gen-{n}".encode())])
            yield message
            if rng.random() < shape.duplicate_share:
                yield message
            if rng.random() < shape.invalid_share:
                yield _invalid(rng, counter, ledger_topic, orders_topic)


def _payment(shape: StreamShape, rng: random.Random, n: int, at: datetime
             ) -> list[tuple[str, str, str]]:
    currency, exponent = rng.choice(CURRENCIES)
    amount = _amount(rng, exponent)
    order_id, debit_id, credit_id = f"ord-g{n}", f"tx-g{n}-d", f"tx-g{n}-c"
    payer, merchant = f"w-{rng.randrange(400)}", f"w-m{rng.randrange(40)}"
    unversioned = rng.random() < shape.unversioned_share
    out: list[tuple[str, str, str]] = []
    final_order = rng.choice(("PAID", "PAID", "PAID", "CAPTURED", "REFUNDED", "FAILED"))
    for version, status in enumerate(("CREATED", final_order), start=1):
        out.append(("orders", order_id, _envelope(f"{order_id}-v{version}", "PaymentOrderUpserted", at, {
            "order_id": order_id, "wallet_id": payer, "merchant_id": f"m-{rng.randrange(40)}",
            "amount": amount, "currency": currency, "status": status,
            "payment_method": rng.choice(METHODS), "payer_name": rng.choice(NAMES),
            "payer_email": f"payer{n}@example.com", "payer_phone": f"010-{n % 10000:04d}-{n % 7919:04d}",
            "account_number": f"110-{n % 1000:03d}-{n:06d}",
            **({} if unversioned else {"version": version}),
            "updated_at": _ts(at + timedelta(seconds=version)), "created_at": _ts(at),
        })))
    if rng.random() < shape.partial_share:
        legs = [("DEBIT", debit_id, payer)]
    else:
        legs = [("DEBIT", debit_id, payer), ("CREDIT", credit_id, merchant)]
    mismatch = rng.random() < shape.mismatch_share
    for entry_type, tx_id, wallet in legs:
        leg_amount = _amount(rng, exponent) if mismatch and entry_type == "CREDIT" else amount
        for version, status in enumerate(("PENDING", "POSTED"), start=1):
            out.append(("ledger", tx_id, _envelope(f"{tx_id}-v{version}", "LedgerEntryUpserted", at, {
                "tx_id": tx_id, "wallet_id": wallet, "entry_type": entry_type,
                "amount": leg_amount, "currency": currency, "status": status,
                "related_id": order_id, **({} if unversioned else {"version": version}),
                "updated_at": _ts(at + timedelta(seconds=version)), "created_at": _ts(at),
            })))
    return out


def _invalid(rng: random.Random, n: int, ledger_topic: str, orders_topic: str) -> OutgoingMessage:
    kind = rng.randrange(4)
    if kind == 0:
        value = "{truncated json"
    elif kind == 1:
        value = json.dumps({"event_id": f"bad-{n}", "event_type": "LedgerEntryUpserted",
                            "payload": {"tx_id": f"tx-bad-{n}", "wallet_id": "w-1",
                                        "entry_type": "SIDEWAYS", "amount": "1",
                                        "currency": "KRW", "status": "POSTED"}})
    elif kind == 2:
        value = json.dumps({"event_id": f"bad-{n}", "event_type": "LedgerEntryUpserted",
                            "payload": {"tx_id": f"tx-bad-{n}", "wallet_id": "w-1",
                                        "entry_type": "DEBIT", "amount": "-3",
                                        "currency": "usd", "status": "POSTED"}})
    else:
        value = json.dumps({"event_id": f"bad-{n}", "event_type": "PaymentOrderVoided",
                            "payload": {"order_id": f"ord-bad-{n}"}})
    topic = ledger_topic if kind < 3 else orders_topic
    return OutgoingMessage(topic=topic, key=f"bad-{n}".encode(), value=value.encode(), headers=[])


def _envelope(event_id: str, event_type: str, at: datetime, payload: dict[str, Any]) -> str:
    return json.dumps({"event_id": event_id, "event_type": event_type, "schema_version": 1,
                       "occurred_at": _ts(at), "payload": payload})


def _amount(rng: random.Random, exponent: int) -> str:
    whole = Decimal(rng.randrange(100, 5_000_000 if exponent == 0 else 50_000))
    if exponent == 0:
        return str(whole)
    return f"{whole}.{rng.randrange(10 ** exponent):0{exponent}d}"


def _ts(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")
