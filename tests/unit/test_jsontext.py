"""Strict JSON: what is not JSON is refused; what jsonb cannot hold is flagged."""

from __future__ import annotations

from decimal import Decimal

import pytest

from eventstore.jsontext import canonical, parse


@pytest.mark.parametrize("text", ['{"a": NaN}', '{"a": Infinity}', '{"a": -Infinity}',
                                  '{"a": "\\ud800"}', '{"\\udfff": 1}', "[" * 5000])
def test_not_json_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse(text)


def test_a_surrogate_pair_is_a_character() -> None:
    assert parse('{"a": "\\ud83d\\ude00"}').value == {"a": "\U0001f600"}


@pytest.mark.parametrize(("text", "storable"), [
    ('{"a": 1.50}', True),
    ('{"a": 1e1000000}', False),
    ('{"a": 1e-20000}', False),
    ('{"a": "x\\u0000y"}', False),
    ('{"a": "\\u00e9"}', True),
    ('{"a": 0e-20000}', False),
    ('{"a": 1.5e-9999}', True),
    ('{"a": 0.' + "0" * 9000 + '1e-9000}', False),
])
def test_jsonb_storability(text: str, storable: bool) -> None:
    assert parse(text).storable_as_jsonb is storable


def test_numbers_keep_their_scale() -> None:
    assert parse('{"amount": 12500.00}').value["amount"].as_tuple() == Decimal("12500.00").as_tuple()


def test_canonical_form_tells_numbers_from_strings_and_ignores_key_order() -> None:
    assert canonical(parse('{"b": 1.0, "a": "x"}').value) == canonical(parse('{"a":"x","b":1.0}').value)
    assert canonical({"amount": Decimal("1.0")}) != canonical({"amount": "1.0"})
    assert canonical({"amount": Decimal("1.0")}) != canonical({"amount": Decimal("1.00")})


def test_canonical_text_of_a_deeply_nested_valid_payload_does_not_overflow_the_stack() -> None:
    from projections.contract import ValidEvent, classify

    deep = "[" * 900 + "]" * 900
    assert canonical(parse(deep).value) == deep
    value = ('{"event_id": "e", "event_type": "LedgerEntryUpserted", "payload": {"tx_id": "t", "wallet_id": "w",'
             ' "entry_type": "DEBIT", "amount": "1", "currency": "KRW", "status": "POSTED", "extra": ' + deep + '}}')
    verdict = classify(value.encode())
    assert isinstance(verdict, ValidEvent) and len(verdict.payload_sha256) == 32
