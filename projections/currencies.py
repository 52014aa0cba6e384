"""ISO 4217 minor units: how many decimal places a currency's amounts have, and amounts in minor units.

`amount_minor` answers an amount as an integer count of the currency's minor unit
(12.34 USD → 1234, 12500 KRW → 12500, 1.234 BHD → 1234), or None when that cannot be
said exactly: the currency is not an active ISO 4217 currency with a minor unit, the
amount has more (non-zero) decimals than the currency has, or the result does not fit
the `bigint` column it is stored in. `projections/contract_sql.py` has its SQL twin.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

BIGINT_MIN: Final = -(2**63)
BIGINT_MAX: Final = 2**63 - 1

_EXPONENT_0 = (
    "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND", "VUV",
    "XAF", "XOF", "XPF",
)
_EXPONENT_3 = ("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND")
_EXPONENT_4 = ("CLF", "UYW")
# ANG, CUC, SLL and ZWL are being withdrawn (replaced by XCG, CUP, SLE and ZWG) but payments
# in them may still be reported; the funds codes (BOV, CHE, CHW, COU, MXV, USN) are kept too.
# Codes without a minor unit (XAU, XAG, XPD, XPT, XDR, XSU, XUA, XBA-XBD, XTS, XXX) are absent.
_EXPONENT_2 = (
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN",
    "BAM", "BBD", "BDT", "BGN", "BMD", "BND", "BOB", "BOV", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD",
    "CAD", "CDF", "CHE", "CHF", "CHW", "CNY", "COP", "COU", "CRC", "CUC", "CUP", "CVE", "CZK",
    "DKK", "DOP", "DZD", "EGP", "ERN", "ETB", "EUR", "FJD", "FKP",
    "GBP", "GEL", "GHS", "GIP", "GMD", "GTQ", "GYD", "HKD", "HNL", "HTG", "HUF",
    "IDR", "ILS", "INR", "IRR", "JMD", "KES", "KGS", "KHR", "KPW", "KYD", "KZT",
    "LAK", "LBP", "LKR", "LRD", "LSL", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRU", "MUR", "MVR",
    "MWK", "MXN", "MXV", "MYR", "MZN", "NAD", "NGN", "NIO", "NOK", "NPR", "NZD",
    "PAB", "PEN", "PGK", "PHP", "PKR", "PLN", "QAR", "RON", "RSD", "RUB",
    "SAR", "SBD", "SCR", "SDG", "SEK", "SGD", "SHP", "SLE", "SLL", "SOS", "SRD", "SSP", "STN", "SVC", "SYP", "SZL",
    "THB", "TJS", "TMT", "TOP", "TRY", "TTD", "TWD", "TZS", "UAH", "USD", "USN", "UYU", "UZS",
    "VED", "VES", "WST", "XCD", "XCG", "YER", "ZAR", "ZMW", "ZWG", "ZWL",
)

MINOR_UNIT_EXPONENT: Final[dict[str, int]] = {
    **dict.fromkeys(_EXPONENT_0, 0),
    **dict.fromkeys(_EXPONENT_2, 2),
    **dict.fromkeys(_EXPONENT_3, 3),
    **dict.fromkeys(_EXPONENT_4, 4),
}

_BIGINT_DIGITS = len(str(BIGINT_MAX))


def amount_minor(amount: Decimal, currency: str) -> int | None:
    """The amount in integer minor units of `currency`; None when not exact or not known.

    Trailing zero decimals beyond the currency's exponent are fine (`12500.00` KRW is 12500);
    non-zero ones are not (`12500.5` KRW is None). Exact integer arithmetic: no Decimal
    context rounding, whatever the amount's size.
    """
    exponent = MINOR_UNIT_EXPONENT.get(currency)
    if exponent is None or not amount.is_finite():
        return None
    sign, digits, amount_exponent = amount.as_tuple()
    assert isinstance(amount_exponent, int)
    coefficient = int("".join(map(str, digits)))
    if coefficient == 0:
        return 0
    shift = amount_exponent + exponent
    if shift >= 0:
        if len(str(coefficient)) + shift > _BIGINT_DIGITS:
            return None
        minor = coefficient * 10**shift
    else:
        if -shift > len(digits):
            return None  # a non-zero coefficient entirely below the minor unit
        minor, rest = divmod(coefficient, 10**-shift)
        if rest:
            return None
    minor = -minor if sign else minor
    return minor if BIGINT_MIN <= minor <= BIGINT_MAX else None
