"""Amounts in ISO 4217 minor units: exact, or None."""

from __future__ import annotations

from decimal import Decimal

import pytest

from projections.currencies import BIGINT_MAX, MINOR_UNIT_EXPONENT, amount_minor


@pytest.mark.parametrize(("amount", "currency", "minor"), [
    ("12500", "KRW", 12500),
    ("12500.00", "KRW", 12500),  # zero decimals beyond the exponent are fine
    ("12500.5", "KRW", None),  # KRW has no minor unit
    ("0.01", "USD", 1),
    ("12.34", "USD", 1234),
    ("12.3", "USD", 1230),
    ("12.345", "USD", None),
    ("12.3450", "USD", None),
    ("12.34000000", "EUR", 1234),
    ("1.234", "BHD", 1234),
    ("1.2345", "KWD", None),
    ("1.2345", "CLF", 12345),
    ("7", "JPY", 7),
    ("0", "VND", 0),
    ("0.00000000", "ISK", 0),
    ("0.5", "CLP", None),
    ("1", "XAU", None),  # no minor unit: not in the table
    ("1", "ABC", None),
    ("1", "usd", None),
    ("999999999999999999.99999999", "USD", None),  # beyond bigint
    ("92233720368547758.07", "USD", BIGINT_MAX),
    ("92233720368547758.08", "USD", None),
    ("-1.50", "USD", -150),
    ("1E+3", "USD", 100000),
    ("NaN", "USD", None),
    ("Infinity", "USD", None),
    ("1E+100000", "USD", None),
    ("1E-100000", "USD", None),
])
def test_amount_minor(amount: str, currency: str, minor: int | None) -> None:
    assert amount_minor(Decimal(amount), currency) == minor


def test_the_table_holds_three_letter_codes_and_iso_exponents() -> None:
    assert all(len(code) == 3 and code.isupper() for code in MINOR_UNIT_EXPONENT)
    assert set(MINOR_UNIT_EXPONENT.values()) == {0, 2, 3, 4}
    assert len(MINOR_UNIT_EXPONENT) > 150
    expected = {"KRW": 0, "JPY": 0, "USD": 2, "EUR": 2, "GBP": 2, "BHD": 3, "KWD": 3, "CLP": 0, "VND": 0,
                "ISK": 0, "CLF": 4, "TND": 3, "UGX": 0, "IDR": 2, "HUF": 2}
    assert {code: MINOR_UNIT_EXPONENT[code] for code in expected} == expected
