"""The SQL fast path (projections/contract_sql.py) against `classify`, on a real PostgreSQL.

(a) Whenever `accepts` is TRUE, `classify` answers a ValidEvent of that type and every
extracted column equals the pydantic value (amounts with the same scale, timestamps as
the same instant). (b) Ordinary traffic (the samples, `bo generate`) takes the fast path.
(c) The SQL twins of the rules answer what the Python rules answer.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql
from psycopg.rows import dict_row

from bo.generate import StreamShape, generate
from eventstore.ingest.decode import decode
from eventstore.records import KafkaCoordinates
from projections import contract_sql
from projections.contract import EVENT_TYPES, LedgerEntryPayload, ValidEvent, classify
from projections.currencies import MINOR_UNIT_EXPONENT, amount_minor
from projections.masking import mask_digits, mask_email, mask_name
from projections.rules import resolved_related_type, status_group
from tests.conftest import REPO, random_ref
from tests.contract.test_contract_matches_json_schema import EXTRA_CASES, STRICTER_THAN_SCHEMA
from tests.integration.helpers import append_all

LEDGER, ORDER = EVENT_TYPES
SAMPLE_FILES = sorted((REPO / "samples").glob("*.jsonl"))

# --- running the fast path next to classify ----------------------------------------------------


def judged_rows(url: str, values: list[bytes]) -> list[dict[str, Any]]:
    """Append the values as log rows; answer, per value, the raw value and per event type
    whether `accepts` holds and what `extract` answers."""
    topic = random_ref("csql")
    records = [decode(KafkaCoordinates(topic, 0, offset, None), b"k", value, [])
               for offset, value in enumerate(values)]
    append_all(url, records)
    out: list[dict[str, Any]] = [{"raw": value} for value in values]
    with psycopg.connect(url, row_factory=dict_row) as conn:
        for event_type in EVENT_TYPES:
            query = sql.SQL('SELECT l."offset", l.raw_value, {ok} AS accepted, {cols} FROM bo.event_log l'
                            ' WHERE l.topic = %(topic)s ORDER BY l."offset"').format(
                ok=contract_sql.accepts(event_type), cols=contract_sql.extract(event_type))
            for row in conn.execute(query, {"topic": topic}).fetchall():
                assert row["raw_value"] is None or bytes(row["raw_value"]) == values[row["offset"]]
                assert row["accepted"] in (True, False)  # never NULL
                out[row["offset"]][event_type] = row
    return out


def expected_columns(event: ValidEvent) -> dict[str, Any]:
    p = event.payload
    values: dict[str, Any] = {
        "event_id": event.envelope.event_id, "wallet_id": p.wallet_id, "amount": p.amount,
        "currency": p.currency, "status": p.status, "created_at": p.created_at, "updated_at": p.updated_at,
        "version": p.version,
        "entry_type": None, "related_id": None, "related_type": None, "merchant_id": None,
        "payment_method": None, "payer_name": None, "payer_email": None, "payer_phone": None,
        "account_number": None,
    }
    if isinstance(p, LedgerEntryPayload):
        values.update(entity_id=p.tx_id, entry_type=p.entry_type, related_id=p.related_id,
                      related_type=p.related_type)
    else:
        values.update(entity_id=p.order_id, merchant_id=p.merchant_id, payment_method=p.payment_method,
                      payer_name=p.payer_name, payer_email=p.payer_email, payer_phone=p.payer_phone,
                      account_number=p.account_number)
    return values


def check_fast_path(judged: Iterable[dict[str, Any]]) -> dict[str, int]:
    """(a) for every row; answers how many rows each event type's fast path took."""
    taken = dict.fromkeys(EVENT_TYPES, 0)
    digests: list[tuple[bytes, bytes]] = []
    for item in judged:
        verdict = classify(item["raw"])
        for event_type in EVENT_TYPES:
            row = item[event_type]
            if not row["accepted"]:
                continue
            taken[event_type] += 1
            assert isinstance(verdict, ValidEvent), (item["raw"], verdict)
            assert verdict.envelope.event_type == event_type, item["raw"]
            expected = expected_columns(verdict)
            assert set(expected) | {"payload_digest"} == set(contract_sql.EXTRACTED_COLUMNS)
            for name, value in expected.items():
                got = row[name]
                assert got == value, (name, got, value, item["raw"])
                assert type(got) is type(value), (name, got, value)
                if name == "amount":
                    assert str(got) == str(value), (got, value, item["raw"])  # the scale as sent
            digests.append((bytes(row["payload_digest"]), verdict.payload_sha256))
    # Equal payloads (Python's canonical JSON) have equal SQL digests, and only they do: the
    # pairs are a one-to-one mapping.
    assert len({sql_digest for sql_digest, _ in digests}) == len({py for _, py in digests}) == len(set(digests))
    return taken


def assert_valid_ones_taken(judged: Iterable[dict[str, Any]]) -> None:
    """(b): every value classify calls valid took the fast path of its type."""
    for item in judged:
        verdict = classify(item["raw"])
        if isinstance(verdict, ValidEvent):
            assert item[verdict.envelope.event_type]["accepted"], item["raw"]


# --- a corpus of values --------------------------------------------------------------------------


class Raw(str):
    """A JSON token written as it is (numbers as the producer spelled them)."""


class Dup:
    """A key sent twice in one object: first, then second (the last one counts)."""

    def __init__(self, first: Any, second: Any) -> None:
        self.first, self.second = first, second


def dumps(value: Any, ensure_ascii: bool = False, space: str = " ") -> str:
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, dict):
        pairs: list[str] = []
        for key, item in value.items():
            name = json.dumps(key, ensure_ascii=ensure_ascii)
            while isinstance(item, Dup):
                pairs.append(f"{name}:{space}{dumps(item.first, ensure_ascii, space)}")
                item = item.second
            pairs.append(f"{name}:{space}{dumps(item, ensure_ascii, space)}")
        return "{" + f",{space}".join(pairs) + "}"
    if isinstance(value, list):
        return "[" + f",{space}".join(dumps(v, ensure_ascii, space) for v in value) + "]"
    return json.dumps(value, ensure_ascii=ensure_ascii)


LEDGER_PAYLOAD: dict[str, Any] = {
    "tx_id": "tx-1", "wallet_id": "w-payer", "entry_type": "DEBIT", "amount": "12500.00", "currency": "KRW",
    "status": "POSTED", "related_id": "ord-1", "related_type": "PAYMENT_ORDER", "version": 2,
    "created_at": "2026-02-05T09:00:00Z", "updated_at": "2026-02-05T09:00:03.123+09:00",
}
ORDER_PAYLOAD: dict[str, Any] = {
    "order_id": "ord-1", "wallet_id": "w-payer", "merchant_id": "m-9", "amount": "12500.00", "currency": "KRW",
    "status": "PAID", "payment_method": "CARD", "payer_name": "김민지", "payer_email": "minji.kim@example.com",
    "payer_phone": "010-1234-5678", "account_number": "110-222-333444", "version": 3,
    "created_at": "2026-02-05T09:00:00Z", "updated_at": "2026-02-05T09:00:02Z",
}


def env(event_type: str = LEDGER, payload: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    base = LEDGER_PAYLOAD if event_type == LEDGER else ORDER_PAYLOAD
    return {"event_id": "e-1", "event_type": event_type, "schema_version": 1,
            "occurred_at": "2026-02-05T09:00:03Z", "payload": {**base, **(payload or {})}, **fields}


def order(**payload: Any) -> dict[str, Any]:
    return env(ORDER, payload)


def ledger(**payload: Any) -> dict[str, Any]:
    return env(LEDGER, payload)


# Valid, ordinary messages: each must take the fast path.
ORDINARY = [
    env(LEDGER), env(ORDER),
    order(payer_name="Kim Minji"), order(payer_name="이서연"), order(payer_name="Jane Doe 🙂"),
    order(payer_name=""), order(payer_email="jane.doe@mail.example.co.kr"), order(payer_phone="+82 10 1234 5678"),
    ledger(amount="0"), ledger(amount="0.5"), ledger(amount=Raw("12500")), ledger(amount=Raw("12500.50")),
    ledger(amount=Raw("0.00000001")), ledger(amount="999999999999999999.99999999"),
    ledger(amount=Raw("999999999999999999.99999999")), ledger(amount="007.50"),
    ledger(version=0), ledger(version=9223372036854775807), ledger(updated_at="2026-02-05T09:00:03.123456-05:30"),
    ledger(created_at="2024-02-29T23:59:59+14:00"), ledger(created_at="2000-02-29T00:00:00-14:00"),
    ledger(created_at="1900-01-01T00:00:00Z", updated_at="2999-12-31T23:59:59.9Z"),
    {k: v for k, v in env(LEDGER).items() if k not in ("schema_version", "occurred_at")},
    env(LEDGER, {"related_type": "MANUAL_ADJUSTMENT", "memo": {"note": "x", "tags": [1, 2.50, "y"]}}),
    env(ORDER, {"x-extra": None}, trace={"a": [True, False, None]}),
    ledger(tx_id="x" * 64, wallet_id="🙂" * 64, related_id="ü" * 64),
    ledger(status="posted"), ledger(status="paıd"), ledger(currency="XXX"),
]
ORDINARY_VALUES = [dumps(v) for v in ORDINARY] + [dumps(v, ensure_ascii=True) for v in ORDINARY] + [
    dumps(env(ORDER), space="\n\t "), "\n " + dumps(env(LEDGER), space="") + " \r\n",
]

# Valid or not, unusual: the fast path may take them only when classify agrees.
TRICKY = [
    # numbers as jsonb would rewrite them
    ledger(amount=Raw("1e2")), ledger(amount=Raw("1E+2")), ledger(amount=Raw("1.50e1")), ledger(amount=Raw("-0")),
    ledger(amount=Raw("-0.0")), ledger(amount=Raw("-1")), ledger(amount=Raw("1" * 19)), ledger(amount=Raw("1" * 18)),
    ledger(amount=Raw("0.000000001")), ledger(amount=Raw("10.10000000")), ledger(amount=Raw("1e-8")),
    ledger(amount="1e2"), ledger(amount=" 1"), ledger(amount="1."), ledger(amount=".5"), ledger(amount="+1"),
    ledger(amount="١٢"), ledger(amount=True), ledger(amount=None), ledger(amount=[1]),
    ledger(version=Raw("1.0")), ledger(version=Raw("1e0")), ledger(version=Raw("-0")), ledger(version="3"),
    ledger(version=True), ledger(version=Raw("9223372036854775808")), ledger(version=None),
    env(LEDGER, schema_version=Raw("1.0")), env(LEDGER, schema_version=Raw("1e0")), env(LEDGER, schema_version=True),
    env(LEDGER, schema_version="1"), env(LEDGER, schema_version=2), env(LEDGER, schema_version=0),
    env(LEDGER, schema_version=Raw("10e-1")),
    # timestamps
    ledger(created_at="2026-02-30T00:00:00Z"), ledger(created_at="2025-02-29T00:00:00Z"),
    ledger(created_at="1900-02-29T00:00:00Z"), ledger(created_at="2026-02-05T23:59:60Z"),
    ledger(created_at="2026-02-05T24:00:00Z"), ledger(created_at="2026-02-05T10:00:00.1234567Z"),
    ledger(created_at="2026-02-05t10:00:00z"), ledger(created_at="2026-02-05T10:00:00+14:01"),
    ledger(created_at="2026-02-05T10:00:00+15:00"), ledger(created_at="2026-02-05T10:00:00+09:75"),
    ledger(created_at="2026-02-05T10:00:00-00:00"), ledger(created_at="1899-12-31T23:59:59Z"),
    ledger(created_at="3000-01-01T00:00:00Z"), ledger(created_at="9999-12-31T23:59:59-01:00"),
    ledger(created_at="0001-01-01T00:00:00+01:00"), ledger(created_at="２０２６-02-05T10:00:00Z"),
    ledger(created_at="2026-02-05T10:00:00"), ledger(created_at="2026-02-05 10:00:00Z"),
    ledger(created_at="2026-02-05T10:00:00Z\n"), env(LEDGER, occurred_at=None), env(LEDGER, occurred_at=5),
    # strings
    ledger(tx_id=""), ledger(tx_id="x" * 65), ledger(wallet_id="🙂" * 65), ledger(status=""), ledger(status=1),
    ledger(currency="usd"), ledger(currency="ÄBC"), ledger(currency="KRWX"), ledger(entry_type="debit"),
    ledger(related_id=None), ledger(related_id=""), ledger(related_type=""), ledger(related_type=None),
    order(payer_name=None), order(payer_name=" Kim"), order(payer_name="\tKim"), order(payer_name="\u3000김"),
    order(payer_name="\u00a0Kim"), order(payer_name="\x1cKim"), order(payer_name="\u200bKim"),
    order(payer_email=" a@b.c"), order(payer_email="no-at"), order(payer_email=5),
    order(payer_phone="٠١٠-١٢٣٤-٥٦٧٨"), order(payer_phone="０１０-1234"), order(account_number="١١٠-222"),
    order(payment_method=""), order(payment_method=None), order(merchant_id=""),
    env(LEDGER, {"amount": Dup("1", True)}), env(LEDGER, {"amount": Dup(True, "1")}),
    env(LEDGER, {"version": Dup("x", 4)}), {**env(LEDGER), "event_id": Dup(1, "e-dup")},
    {**env(LEDGER), "event_type": ORDER}, {**env(ORDER), "event_type": LEDGER},
    {**env(LEDGER), "event_type": "PaymentOrderVoided"},
    {**env(LEDGER), "payload": [LEDGER_PAYLOAD]}, {**env(LEDGER), "payload": None},
    {k: v for k, v in env(LEDGER).items() if k != "event_id"}, env(LEDGER, event_id=7),
    env(LEDGER, {"deep": Raw("[" * 600 + "]" * 600)}), env(LEDGER, {"deep": Raw("[" * 500 + "]" * 500)}),
    env(LEDGER, {"deep": Raw("[" * 1200 + "]" * 1200)}), env(LEDGER, {"deep": Raw("[1," * 600 + "]" * 600)}),
    env(LEDGER, {"memo": "a: -1, b: 1e5"}),
    {**env(LEDGER), "payload": Dup(LEDGER_PAYLOAD, "p")}, {**env(LEDGER), "payload": Dup("p", LEDGER_PAYLOAD)},
    {**env(LEDGER), "payload": Dup({**LEDGER_PAYLOAD, "amount": "1"}, LEDGER_PAYLOAD)},
    {**env(LEDGER), "schema_version": Dup(2, 1)}, {**env(LEDGER), "schema_version": Dup(1, 2)},
]
TRICKY_VALUES: list[bytes] = [dumps(v).encode() for v in TRICKY] + [
    b"\xef\xbb\xbf" + dumps(env(LEDGER)).encode(),  # a BOM
    dumps(env(LEDGER)).encode()[:-1],  # truncated
    dumps(order(payer_name="Kim")).encode().replace(b"Kim", b"K\xffm"),  # not UTF-8
    dumps(env(LEDGER)).replace("POSTED", "POS\\u0000TED").encode(),  # jsonb cannot store it
    dumps(env(LEDGER)).replace("POSTED", "\\ud800").encode(),  # a lone surrogate
    dumps(env(LEDGER)).replace('"payload"', '"pa\\u0079load"').encode(),  # escapes: the same JSON
    dumps(env(LEDGER)).replace('"DEBIT"', '"\\u0044EBIT"').replace('"KRW"', '"\\u004bRW"').encode(),
    b"[1, 2]", b'"text"', b"null", b"",
]


def sample_values() -> list[bytes]:
    values = []
    for path in SAMPLE_FILES:
        for line in path.read_text().splitlines():
            if line.strip():
                values.append(json.loads(line)["value"].encode())
    return values


def test_samples_contract_corpus_and_tricky_values(admin_database_url: str) -> None:
    contract_cases = [*EXTRA_CASES, *(value for value, _field in STRICTER_THAN_SCHEMA)]
    values = sample_values() + [v.encode() for v in contract_cases] + TRICKY_VALUES
    judged = judged_rows(admin_database_url, values)
    taken = check_fast_path(judged)
    assert_valid_ones_taken(judged[:len(sample_values())])
    assert taken[LEDGER] > 10 and taken[ORDER] > 3


def test_ordinary_messages_take_the_fast_path(admin_database_url: str) -> None:
    judged = judged_rows(admin_database_url, [v.encode() for v in ORDINARY_VALUES])
    check_fast_path(judged)
    for item in judged:
        assert isinstance(classify(item["raw"]), ValidEvent), item["raw"]
    assert_valid_ones_taken(judged)


def test_generated_traffic_takes_the_fast_path(admin_database_url: str) -> None:
    messages = list(generate(StreamShape(payments=300, seed=11), "ledger", "orders"))
    values = [m.value for m in messages if m.value is not None]
    judged = judged_rows(admin_database_url, values)
    taken = check_fast_path(judged)
    assert_valid_ones_taken(judged)
    valid = sum(isinstance(classify(v), ValidEvent) for v in values)
    assert sum(taken.values()) == valid and valid > 0.9 * len(values)


def test_what_the_fast_path_leaves_to_python(admin_database_url: str) -> None:
    """The conservative exclusions: valid for classify, but not taken (Python decides)."""
    valid = [ledger(amount=Raw("1e2")), ledger(amount=Raw("-0.0")), ledger(amount=Raw("1.50E1")),
             ledger(created_at="2026-02-05t10:00:00z"), ledger(created_at="2026-02-05T10:00:00.1234567Z"),
             ledger(created_at="2026-02-05T10:00:00+15:00"), ledger(created_at="1899-12-31T23:59:59Z"),
             order(payer_name=" Kim"), order(payer_email="\u3000a@b.c"), order(payer_phone="٠١٠-١٢٣٤-٥٦٧٨"),
             env(LEDGER, {"deep": Raw("[" * 600 + "]" * 600)}), env(LEDGER, {"memo": "a: -1"})]
    # jsonb shows these as the integer 1 or 0; Python reads a Decimal and rejects them.
    invalid = [ledger(version=Raw("1e0")), ledger(version=Raw("-0.0")), env(LEDGER, schema_version=Raw("1E0")),
               env(LEDGER, schema_version=Raw("10e-1"))]
    judged = judged_rows(admin_database_url, [dumps(v).encode() for v in valid + invalid])
    for n, item in enumerate(judged):
        assert isinstance(classify(item["raw"]), ValidEvent) == (n < len(valid)), item["raw"]
        assert not item[LEDGER]["accepted"] and not item[ORDER]["accepted"], item["raw"]


def test_timestamps_and_amounts_in_bulk(admin_database_url: str) -> None:
    """Field checks against Python on many systematic values (each in an otherwise valid message)."""
    rng = random.Random(4217)
    parts = ([1, 1899, 1900, 1904, 2000, 2024, 2100, 2400, 2999, 3000, 9999], range(14),
             [0, 1, 28, 29, 30, 31, 32], [0, 9, 23, 24], [0, 59, 60], [0, 59, 60],
             ["", ".1", ".12", ".123", ".123456", ".1234567", "."],
             ["Z", "z", "+00:00", "-00:00", "+09:00", "-05:30", "+13:59", "+14:00", "-14:00", "+14:01", "+09:75",
              "+24:00", "+0900", ""])
    stamps = set()
    while len(stamps) < 1500:
        y, mo, d, h, mi, se, frac, zone = (rng.choice(list(p)) for p in parts)
        stamps.add(f"{y:04d}-{mo:02d}-{d:02d}{rng.choice('TTTt ')}{h:02d}:{mi:02d}:{se:02d}{frac}{zone}")
    amounts: list[Any] = []
    for _ in range(700):
        whole = rng.choice(["0", "1", "00", "12500", "1" * 17, "9" * 18, "1" * 19, "0" * 18 + "1"])
        frac = rng.choice(["", ".0", ".5", ".50", ".12345678", ".123456789", ".00000000", "."])
        amounts.append(rng.choice([whole + frac, Raw(whole + frac) if not whole.startswith("00") or whole == "0"
                                   else whole + frac]))
    stamp_list = sorted(stamps)
    values = [dumps(ledger(created_at=t, updated_at=t)).encode() for t in stamp_list]
    values += [dumps(ledger(amount=a)).encode() for a in amounts]
    judged = judged_rows(admin_database_url, values)
    taken = check_fast_path(judged)
    # Exactly the documented exclusions go to Python; every other valid value takes the fast path.
    for n, item in enumerate(judged):
        valid = isinstance(classify(item["raw"]), ValidEvent)
        ordinary = n >= len(stamp_list) or FAST_TIMESTAMP.fullmatch(stamp_list[n]) is not None
        assert item[LEDGER]["accepted"] == (valid and ordinary), item["raw"]
    assert 50 < taken[LEDGER] < len(values) - 50


# The timestamps the fast path reads (years 1900-2999, ±14:00 at most); Python decides the others.
FAST_TIMESTAMP = re.compile(r"(19|2[0-9])[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?"
                            r"(Z|[+-](0[0-9]|1[0-3]):[0-5][0-9]|[+-]14:00)")


# --- mutated envelopes -------------------------------------------------------------------------

TOKENS = ["1e2", "1E2", "1.5e1", "-0", "-0.0", "-1", "0", "1", "1.0", "2", "0.1", "12500.00", "1" * 19, "1" * 18,
          "123456789012345678.12345678", "0.000000001", "9223372036854775807", "9223372036854775808", "1e400",
          "true", "false", "null", "[]", "{}", '""', '" "', "[1]", '{"a":1}']
TS_FIELDS = ("occurred_at", "created_at", "updated_at")
ID_FIELDS = ("event_id", "tx_id", "order_id", "wallet_id", "related_id", "merchant_id")
TEXT_FIELDS = ("status", "related_type", "payment_method", "payer_name", "payer_email", "payer_phone",
               "account_number", "currency", "entry_type", "event_type")
ODD_CHARS = " \t\n\u3000\u00a0\u2028\x1c\x85\u200b김민지Kk@.-0٠١٢０１5🙂\"\\/é"

texts = st.text(alphabet=st.one_of(st.sampled_from(ODD_CHARS), st.characters(codec="utf-8", exclude_characters="\x00")),
                max_size=8)


@st.composite
def timestamps(draw: st.DrawFn) -> str:
    year = draw(st.sampled_from([1, 1899, 1900, 1970, 2000, 2024, 2026, 2100, 2999, 3000, 9999]))
    month, day = draw(st.integers(0, 13)), draw(st.sampled_from([0, 1, 28, 29, 30, 31, 32]))
    hour, minute, second = draw(st.sampled_from([0, 9, 23, 24])), draw(st.sampled_from([0, 59, 60])), \
        draw(st.sampled_from([0, 30, 59, 60]))
    fraction = draw(st.sampled_from(["", ".1", ".123", ".123456", ".1234567", ".000000001", "."]))
    offset = draw(st.sampled_from(["Z", "z", "+00:00", "-00:00", "+09:00", "-05:30", "+14:00", "-14:00", "+14:01",
                                   "+15:00", "-23:59", "+09:75", "+0900", ""]))
    sep = draw(st.sampled_from(["T", "T", "T", "t", " "]))
    return f"{year:04d}-{month:02d}-{day:02d}{sep}{hour:02d}:{minute:02d}:{second:02d}{fraction}{offset}"


def amounts() -> st.SearchStrategy[Any]:
    digits = st.builds(lambda i, f: f"{i}{'.' + f if f else ''}",
                       st.sampled_from(["0", "1", "12500", "00", "1" * 18, "1" * 19, "99"]),
                       st.sampled_from(["", "0", "00", "5", "50", "12345678", "123456789", "00000000"]))
    return st.one_of(digits, digits.map(Raw), st.decimals(allow_nan=False, allow_infinity=False).map(lambda d: Raw(str(d))),
                     st.floats(allow_nan=False, allow_infinity=False).map(lambda f: Raw(json.dumps(f))))


def value_for(field: str) -> st.SearchStrategy[Any]:
    odd = st.one_of(st.none(), st.booleans(), st.integers(-5, 2**64), st.sampled_from(TOKENS).map(Raw), texts)
    if field in TS_FIELDS:
        ordinary = st.one_of(timestamps(), st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat()))
    elif field in ID_FIELDS:
        ordinary = st.one_of(texts, st.integers(0, 70).map(lambda n: "i" * n), st.integers(60, 70).map(lambda n: "김" * n))
    elif field == "amount":
        ordinary = amounts()
    elif field in ("version", "schema_version"):
        ordinary = st.one_of(st.integers(-2, 2**63 + 2), st.sampled_from(["1", "1.0", "1e0", "-0", "1e1"]).map(Raw))
    elif field == "currency":
        ordinary = st.sampled_from(["KRW", "USD", "usd", "ÄBC", "KRWX", "US", "", "BHD"])
    elif field == "entry_type":
        ordinary = st.sampled_from(["DEBIT", "CREDIT", "debit", "CREDIT ", ""])
    elif field == "event_type":
        ordinary = st.sampled_from([*EVENT_TYPES, "PaymentOrderVoided", ""])
    else:
        ordinary = texts
    return st.one_of(ordinary, ordinary, odd)


ENVELOPE_FIELDS = ("event_id", "event_type", "schema_version", "occurred_at", "payload")
PAYLOAD_FIELDS = tuple(dict.fromkeys([*LEDGER_PAYLOAD, *ORDER_PAYLOAD, "entry_type", "extra"]))


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    document = env(draw(st.sampled_from(EVENT_TYPES)))
    payload = document["payload"]
    for _ in range(draw(st.integers(0, 3))):
        where = draw(st.sampled_from(["envelope", "payload", "payload"]))
        target, field = (document, draw(st.sampled_from(ENVELOPE_FIELDS))) if where == "envelope" else \
            (payload, draw(st.sampled_from(PAYLOAD_FIELDS)))
        action = draw(st.sampled_from(["remove", "set", "set", "set", "duplicate"]))
        if action == "remove":
            target.pop(field, None)
        elif action == "duplicate" and field in target:
            target[field] = Dup(draw(value_for(field)), target[field])
        elif field == "payload":
            target[field] = draw(st.one_of(st.none(), st.just([]), st.just("p"), st.just({})))
        else:
            target[field] = draw(value_for(field))
    text = dumps(document, ensure_ascii=draw(st.booleans()), space=draw(st.sampled_from([" ", "", "\n  "])))
    raw = text.encode()
    damage = draw(st.sampled_from(["none"] * 12 + ["truncate", "bom", "latin1"]))
    if damage == "truncate":
        raw = raw[: draw(st.integers(0, len(raw) - 1))]
    elif damage == "bom":
        raw = b"\xef\xbb\xbf" + raw
    elif damage == "latin1":
        raw = text.encode("latin-1", errors="replace")
    return raw


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(mutated(), min_size=30, max_size=30))
def test_mutated_envelopes(admin_database_url: str, values: list[bytes]) -> None:
    check_fast_path(judged_rows(admin_database_url, values))


# --- the rule twins -----------------------------------------------------------------------------


def sql_map(url: str, build: Any, *columns: tuple[str, list[Any]]) -> list[Any]:
    """`build(x, y, …)` over unnest(arrays), in the arrays' order."""
    names = [sql.Identifier(f"c{i}") for i in range(len(columns))]
    query = sql.SQL("SELECT {e} FROM unnest({arrays}) WITH ORDINALITY AS t({names}, n) ORDER BY n").format(
        e=build(*names),
        arrays=sql.SQL(", ").join(sql.SQL("%s::" + kind + "[]") for kind, _ in columns),
        names=sql.SQL(", ").join(names))
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute(query, [values for _, values in columns]).fetchall()]


STATUSES = ["POSTED", "posted", "Posted", "paid", "PAID", "paıd", "PAİD", "ſettled", "SETTLED", "settled",
            "CANCELLED", "canceled", "refunded", "VOIDED", "pending", "AUTHORIZED", "ERROR", "expired", "",
            "POSTED ", " POSTED", "PO\u00adSTED", "POSTED\n", "ＰＡＩＤ", "Processing", "weird", "ßuccess", "succeſs"]
NAMES = ["Kim Minji", " Kim", "\tKim", "\u3000김민지", "김민지", "  ", "", "\u00a0\u2028x", "\x1c\x1d\x1e\x1fA",
         "\x85B", "\u200bC", "\ufeffD", "\u180eE", "🙂", "\n", " \u3000 ", "a", "ǅemal", "\u0301e"]
EMAILS = ["jane.doe@example.com", "minji.kim@mail.example.co.kr", "no-at-sign", "no-dot@example", "dot@end.",
          "@x", "@", "a@", "a@.com", "a@b.c.", "a@@b.c", "x@y@z.w", " a@b.c", "\u3000a@b.c", "김@예시.한국",
          ".@.", "a@..", "a.b@c", "", " ", "@.x", "ab@.", "🙂@🙂.🙂"]
PHONES = ["010-1234-5678", "110-222-333444", "12", "123", "1234", "+82 10 1234 5678", "٠١٠-١٢٣٤-٥٦٧٨",
          "０１０-１２３４-５６７８", "010-1234-567٨", "𝟎𝟏𝟐𝟑𝟒", "abc", "", "①②③④⑤", "¹²³⁴", "12 34", "٣"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(extra=st.lists(texts, max_size=20))
def test_masks_and_status_groups_match_python(admin_database_url: str, extra: list[str]) -> None:
    url = admin_database_url
    statuses, names, emails, phones = STATUSES + extra, NAMES + extra, EMAILS + extra, PHONES + extra
    assert sql_map(url, contract_sql.status_group_sql, ("text", statuses)) == [status_group(s) for s in statuses]
    assert sql_map(url, contract_sql.mask_name_sql, ("text", names)) == [mask_name(n) for n in names]
    assert sql_map(url, contract_sql.mask_email_sql, ("text", emails)) == [mask_email(e) for e in emails]
    assert sql_map(url, contract_sql.mask_digits_sql, ("text", phones)) == [mask_digits(p) for p in phones]


def test_null_in_null_out(admin_database_url: str) -> None:
    for twin in (contract_sql.status_group_sql, contract_sql.mask_name_sql, contract_sql.mask_email_sql,
                 contract_sql.mask_digits_sql):
        assert sql_map(admin_database_url, twin, ("text", [None])) == [None]


def test_related_type_and_booked_at_match_python(admin_database_url: str) -> None:
    ids, types = [None, None, "ord-1", "ord-1", "", ""], [None, "FEE", None, "PAYMENT_ORDER", None, "X"]
    assert sql_map(admin_database_url, contract_sql.resolved_related_type_sql, ("text", ids), ("text", types)) == [
        resolved_related_type(i, t) for i, t in zip(ids, types, strict=True)]
    t0 = datetime(2026, 2, 5, tzinfo=UTC)
    created, updated, ingested = [t0, None, None, t0], [t0 + timedelta(1), t0, None, None], [t0 + timedelta(2)] * 4
    got = sql_map(admin_database_url, contract_sql.booked_at_sql, ("timestamptz", created), ("timestamptz", updated),
                  ("timestamptz", ingested))
    assert got == [c or u or i for c, u, i in zip(created, updated, ingested, strict=True)]


AMOUNTS = ["0", "0.00", "12500", "12500.00", "12500.5", "12500.50", "1.23", "1.234", "1.2340", "1.23400000",
           "0.001", "0.0001", "0.00000001", "999999999999999999.99999999", "92233720368547758.07",
           "92233720368547758.08", "9223372036854775807", "9223372036854775808", "-1.5", "-0.00", "1E+3", "NaN",
           "Infinity", "1E+30", "100000000000000000000"]
CURRENCIES = ["KRW", "USD", "BHD", "CLF", "JPY", "XXX", "XAU", "krw", "", "EUR", "KWD", "VND", "ISK", "CLP"]


@settings(max_examples=30, deadline=None)
@given(extra=st.lists(st.tuples(st.integers(0, 9).flatmap(
    lambda places: st.decimals(-(10**21), 10**21, allow_nan=False, allow_infinity=False, places=places)),
                                st.sampled_from([*sorted(MINOR_UNIT_EXPONENT), "ABC"])), max_size=20))
def test_amount_minor_matches_python(admin_database_url: str, extra: list[tuple[Decimal, str]]) -> None:
    pairs = [(Decimal(a), c) for a in AMOUNTS for c in CURRENCIES] + extra
    pairs = [(a, c) for a, c in pairs if a.is_nan() or abs(a.adjusted()) < 1000]  # numeric's range
    got = sql_map(admin_database_url, contract_sql.amount_minor_sql,
                  ("numeric", [a for a, _ in pairs]), ("text", [c for _, c in pairs]))
    assert got == [amount_minor(a, c) for a, c in pairs]


def test_every_python_whitespace_is_stripped_by_the_sql_mask(admin_database_url: str) -> None:
    spaces = contract_sql.python_whitespace()
    names = [f"{c}x" for c in spaces] + [c for c in spaces]
    assert sql_map(admin_database_url, contract_sql.mask_name_sql, ("text", names)) == [mask_name(n) for n in names]


def test_expressions_are_usable_in_parametrised_statements() -> None:
    for event_type in EVENT_TYPES:
        text = (contract_sql.accepts(event_type).as_string(None) + contract_sql.extract(event_type).as_string(None)
                + contract_sql.mask_digits_sql(sql.Identifier("x")).as_string(None))
        assert "%" not in text
    with pytest.raises(ValueError, match="unknown event type"):
        contract_sql.accepts("PaymentOrderVoided")


def test_payload_digest_is_sha256_of_the_payload_jsonb_text(admin_database_url: str) -> None:
    judged = judged_rows(admin_database_url, [dumps(env(LEDGER)).encode()])
    with psycopg.connect(admin_database_url) as conn:
        text = conn.execute("SELECT %s::jsonb::text", [json.dumps(LEDGER_PAYLOAD)]).fetchone()
    assert text is not None
    assert bytes(judged[0][LEDGER]["payload_digest"]) == hashlib.sha256(text[0].encode()).digest()

