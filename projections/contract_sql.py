"""A conservative SQL fast path for `projections.contract.classify`, and SQL twins of the rules.

`accepts(event_type)` is a boolean SQL expression over a log row (`bo.event_log`, alias
`l`) that is TRUE only when `classify(l.raw_value)` certainly answers a `ValidEvent` of
that type, and FALSE otherwise (never NULL, never an error, whatever the row holds).
A FALSE row is not necessarily invalid: it goes to Python, which stays the authority
on rejections and their messages. `extract(event_type)` is the select list of the
values the pydantic models would hold, for the rows `accepts` lets through.

What `accepts` leaves to Python although it may be valid (the conservative exclusions):

- any JSON number written with an exponent (`1e2`) or a minus sign anywhere in the raw
  text: jsonb reads `1e2` as 100 and `-0.0` as 0.0 where Python keeps `1E+2` and `-0.0`;
- values nested `MAX_DEPTH` levels deep or more (Python's parser and digest recurse per level);
- timestamps other than `YYYY-MM-DDTHH:MM:SS[.ffffff](Z|±HH:MM)` with an upper-case T and
  Z, years 1900–2999, at most 6 fractional digits, offsets within ±14:00 (PostgreSQL
  rounds finer fractions where Python truncates, and accepts second 60 and 24:00);
- payer_name or payer_email starting with a character Python's `str.strip()` removes,
  payer_phone or account_number with a non-ASCII character: there the masks depend on
  Unicode tables, and the fast path should not.

Everything else is decided exactly: event_id and ids 1–64 characters, StrictStr and
StrictInt (no booleans, no numbers for strings, no `1.0` for integers), optional fields
absent (JSON null is a rejection), schema_version absent or the integer 1, amount a
string matching the contract's pattern or a JSON number with at most 18 integer and 8
fractional digits, currency `^[A-Z]{3}$`, status non-empty.

`extract`'s `payload_digest` is the SHA-256 of the payload's jsonb text, not of
`contract.payload_digest`'s canonical JSON: on the rows `accepts` takes, two payloads have
equal digests in SQL exactly when they have equal digests in Python (the numbers jsonb would
rewrite are what the raw-text check excludes), but the bytes differ.

Both run on every PostgreSQL bo supports (15+): `extract` guards each cast with the check
`accepts` makes of that value, not with a version-specific function such as
`pg_input_is_valid` (16+). The expressions use no `%` character, so they compose into
statements with parameters.
"""

from __future__ import annotations

import functools
import json
import unicodedata
from collections.abc import Sequence
from typing import Final

from psycopg import sql

from projections.contract import EVENT_TYPES
from projections.currencies import BIGINT_MAX, BIGINT_MIN, MINOR_UNIT_EXPONENT
from projections.rules import PAYMENT_ORDER, STATUS_GROUPS

EXTRACTED_COLUMNS: Final = (
    "event_id", "entity_id", "wallet_id", "entry_type", "amount", "currency", "status", "related_id",
    "related_type", "merchant_id", "payment_method", "payer_name", "payer_email", "payer_phone",
    "account_number", "created_at", "updated_at", "version", "payload_digest",
)

# Python recurses per nesting level, to parse (one frame) and to digest the payload (two), against
# a limit of 1000 frames, the caller's included. Ordinary messages nest two or three levels.
MAX_DEPTH: Final = 64

_ENTITY_ID = {"LedgerEntryUpserted": "tx_id", "PaymentOrderUpserted": "order_id"}
_LEDGER_ONLY = frozenset({"entry_type", "related_id", "related_type"})
_ORDER_ONLY = frozenset({"merchant_id", "payment_method", "payer_name", "payer_email", "payer_phone",
                         "account_number"})
_TEXT_COLUMNS = ("wallet_id", "entry_type", "currency", "status", "related_id", "related_type", "merchant_id",
                 "payment_method", "payer_name", "payer_email", "payer_phone", "account_number")

# Patterns: ASCII bracket expressions only (PostgreSQL ranges are by code point), no capturing
# groups, `^…$` (PostgreSQL's `$` is the end of the text, not before a final newline), and no
# bounded repetition where it can be avoided (PostgreSQL builds its DFA anew for every value,
# so each distinct state costs on every row). Each is applied to `->>` text: only a JSON string
# (or, for the amount, a JSON number) can match, so a match is also the type check.
_DECIMAL_RE: Final = r"^[0-9]+(?:\.[0-9]+)?$"  # the digit counts are checked apart
_CURRENCY_RE: Final = r"^[A-Z][A-Z][A-Z]$"
_TIMESTAMP_RE: Final = (  # the day of the month is checked apart
    r"^(?:19|2[0-9])[0-9][0-9]-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
    r"T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,6})?"
    r"(?:Z|[+-](?:0[0-9]|1[0-3]):[0-5][0-9]|[+-]14:00)$"
)
# A number token with an exponent or a minus sign: after `:`, `,` or `[` and JSON whitespace.
# Inside strings it only sends a valid row to Python.
_UNFAITHFUL_NUMBER_RE: Final = r"[:,[][ \t\n\r]*(?:-|[0-9]+(?:\.[0-9]+)?[eE])"


# --- small builders -------------------------------------------------------------------------

def _q(template: str, **parts: sql.Composable) -> sql.Composed:
    return sql.SQL(template).format(**parts)


def _lit(value: object) -> sql.Literal:
    return sql.Literal(value)


def _all(*conditions: sql.Composable) -> sql.Composed:
    """Each condition is safe on its own (SQL promises no order). PostgreSQL in fact evaluates
    them left to right and stops at the first false one, so the cheap, selective ones come first."""
    return sql.SQL("(") + sql.SQL(" AND ").join(conditions) + sql.SQL(")")


def _doc(alias: str) -> sql.Composed:
    return _q("{a}.document", a=sql.Identifier(alias))


def _payload(alias: str) -> sql.Composed:
    return _q("({d} -> 'payload')", d=_doc(alias))


def _get(obj: sql.Composable, key: str) -> sql.Composed:
    return _q("({o} -> {k})", o=obj, k=_lit(key))


def _text(obj: sql.Composable, key: str) -> sql.Composed:
    return _q("({o} ->> {k})", o=obj, k=_lit(key))


def _matches(obj: sql.Composable, key: str, pattern: str) -> sql.Composed:
    """Present as a value whose `->>` text matches (NULL when absent or JSON null)."""
    return _q("({v} ~ {re})", v=_text(obj, key), re=_lit(pattern))


def _present(condition: sql.Composable) -> sql.Composed:
    """Required: the condition, never NULL (an absent field or a JSON null fails)."""
    return _q("coalesce({c}, false)", c=condition)


def _optional(obj: sql.Composable, key: str, condition: sql.Composable) -> sql.Composed:
    """Absent, or present and the condition holds (a JSON null fails: no JSON null passes a check)."""
    return _q("(CASE WHEN NOT ({o} ? {k}) THEN true ELSE coalesce({c}, false) END)",
              o=obj, k=_lit(key), c=condition)


def _string(obj: sql.Composable, key: str, min_length: int = 0, max_length: int | None = None) -> sql.Composed:
    checks: list[sql.Composable] = [_q("jsonb_typeof({v}) = 'string'", v=_get(obj, key))]
    if max_length is not None:
        checks.append(_q("char_length({v}) BETWEEN {lo} AND {hi}", v=_text(obj, key), lo=_lit(min_length),
                         hi=_lit(max_length)))
    elif min_length:
        checks.append(_q("{v} <> ''", v=_text(obj, key)))
    return _all(*checks)


def _id(obj: sql.Composable, key: str) -> sql.Composed:
    return _string(obj, key, 1, 64)


def _timestamp_ok(text: sql.Composable) -> sql.Composed:
    """The text is a timestamp Python and PostgreSQL both read, as the same instant; never NULL."""
    day, month = _q("substr({t}, 9, 2)", t=text), _q("substr({t}, 6, 2)", t=text)
    year = _q("substr({t}, 1, 4)::integer", t=text)
    leap = _q("(mod({y}, 4) = 0 AND (mod({y}, 100) <> 0 OR mod({y}, 400) = 0))", y=year)
    # After the pattern matched, the substrings are ASCII digits: casting them cannot fail.
    return _q(
        "(CASE WHEN ({t} ~ {re}) IS NOT TRUE THEN false"
        " WHEN {day} COLLATE \"C\" <= '28' THEN true"
        " WHEN {month} = '02' THEN {day} = '29' AND {leap}"
        " WHEN {month} IN ('04', '06', '09', '11') THEN {day} <> '31'"
        " ELSE true END)",
        t=text, re=_lit(_TIMESTAMP_RE), day=day, month=month, leap=leap,
    )


def _timestamp(obj: sql.Composable, key: str, *same_as: sql.Composable) -> sql.Composed:
    """A valid timestamp (see `_timestamp_ok`).

    `same_as`: texts of timestamps checked in the same conjunction; an equal text needs no
    second look (ordinary messages repeat occurred_at in created_at or updated_at).
    """
    ok = _timestamp_ok(_text(obj, key))
    if not same_as:
        return ok
    return _q("(CASE WHEN {v} IN ({others}) THEN true ELSE {ok} END)",
              v=_text(obj, key), others=sql.SQL(", ").join(same_as), ok=ok)


def _amount_ok(obj: sql.Composable) -> sql.Composed:
    """A string or a number (its jsonb text: digits as sent, the exponents being excluded) with
    at most 18 integer and 8 fractional digits, not negative."""
    text = _text(obj, "amount")
    dot = _q("strpos({t}, '.')", t=text)
    return _q(
        "(CASE WHEN ({t} ~ {re}) IS NOT TRUE THEN false WHEN {dot} = 0 THEN char_length({t}) <= 18"
        " ELSE {dot} <= 19 AND char_length({t}) - {dot} <= 8 END)",
        t=text, re=_lit(_DECIMAL_RE), dot=dot,
    )


def _version_ok(obj: sql.Composable) -> sql.Composed:
    """A JSON integer in 0 … 2^63-1. jsonb writes a number as `-?digits(.digits)?` (an exponent in
    the message is excluded by the raw-text check): no `.` and no `-` leaves digits only."""
    v, t = _get(obj, "version"), _text(obj, "version")
    return _q(
        "(jsonb_typeof({v}) = 'number' AND strpos({t}, '.') = 0 AND left({t}, 1) <> '-'"
        " AND (char_length({t}) < 19 OR (char_length({t}) = 19 AND {t} COLLATE \"C\" <= {max})))",
        v=v, t=t, max=_lit(str(BIGINT_MAX)),
    )


@functools.cache
def python_whitespace() -> str:
    """Every character `str.isspace()` calls whitespace (what `str.strip()` removes)."""
    return "".join(c for c in map(chr, range(0x110000)) if c.isspace())


@functools.cache
def _decimal_digit_class() -> str:
    """A bracket expression of every Unicode decimal digit (Nd): what Python's `re` calls `\\d`."""
    ranges: list[list[int]] = []
    for code in range(0x110000):
        if unicodedata.category(chr(code)) == "Nd":
            if ranges and ranges[-1][1] == code - 1:
                ranges[-1][1] = code
            else:
                ranges.append([code, code])
    return "".join(f"\\U{lo:08X}-\\U{hi:08X}" for lo, hi in ranges)


def _optional_text(obj: sql.Composable, key: str, also: sql.Composable | None = None) -> sql.Composed:
    """Absent, or a JSON string (of any length) for which `also` holds."""
    typed = _q("coalesce(jsonb_typeof({v}), 'string') = 'string'", v=_get(obj, key))
    return typed if also is None else _all(typed, _q("coalesce({c}, true)", c=also))


def _no_leading_space(obj: sql.Composable, key: str) -> sql.Composed:
    return _q("ltrim({v}, {ws}) = {v}", v=_text(obj, key), ws=_lit(python_whitespace()))


def _ascii(obj: sql.Composable, key: str) -> sql.Composed:
    return _q("octet_length({v}) = char_length({v})", v=_text(obj, key))


# --- the fast path --------------------------------------------------------------------------

def _check_type(event_type: str) -> None:
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}")


def _envelope_ok(event_type: str, alias: str) -> sql.Composed:
    d = _doc(alias)
    return _all(
        _q("{v} = {t}::jsonb", v=_get(d, "event_type"), t=_lit(json.dumps(event_type))),
        _q("jsonb_typeof({v}) = 'object'", v=_get(d, "payload")),
        _id(d, "event_id"),
        _q("coalesce(({v})::text, '1') = '1'", v=_get(d, "schema_version")),  # absent or the integer 1
        _optional(d, "occurred_at", _timestamp(d, "occurred_at")),
    )


def _payload_ok(event_type: str, alias: str) -> sql.Composed:
    d, p = _doc(alias), _payload(alias)
    occurred_at, created_at = _text(d, "occurred_at"), _text(p, "created_at")
    common = [
        _present(_amount_ok(p)),
        _present(_matches(p, "currency", _CURRENCY_RE)),
        _string(p, "status", min_length=1),
        _optional(p, "created_at", _timestamp(p, "created_at", occurred_at)),
        _optional(p, "updated_at", _timestamp(p, "updated_at", occurred_at, created_at)),
        _optional(p, "version", _version_ok(p)),
    ]
    if event_type == "LedgerEntryUpserted":
        return _all(
            _id(p, "tx_id"), _id(p, "wallet_id"),
            _q("{v} IN ('\"DEBIT\"'::jsonb, '\"CREDIT\"'::jsonb)", v=_get(p, "entry_type")),
            *common,
            _optional(p, "related_id", _id(p, "related_id")),
            _optional(p, "related_type", _string(p, "related_type", min_length=1)),
        )
    return _all(
        _id(p, "order_id"), _id(p, "wallet_id"),
        *common,
        _optional(p, "merchant_id", _id(p, "merchant_id")),
        _optional_text(p, "payment_method"),
        _optional_text(p, "payer_name", _no_leading_space(p, "payer_name")),
        _optional_text(p, "payer_email", _no_leading_space(p, "payer_email")),
        _optional_text(p, "payer_phone", _ascii(p, "payer_phone")),
        _optional_text(p, "account_number", _ascii(p, "account_number")),
    )


def _raw_text_ok(alias: str) -> sql.Composed:
    # encode(…, 'escape') never fails: it leaves ASCII as it is (what the check looks at) and
    # writes other bytes as octal escapes, so a value that is not UTF-8 cannot raise here.
    return _all(
        _q("NOT ({d} @? {path}::jsonpath)", d=_doc(alias), path=_lit(f"strict $.**{{{MAX_DEPTH}}}")),
        _q("encode({a}.raw_value, 'escape') !~ {re}", a=sql.Identifier(alias), re=_lit(_UNFAITHFUL_NUMBER_RE)),
    )


def accepts(event_type: str, alias: str = "l") -> sql.Composed:
    """TRUE only when `classify(<alias>.raw_value)` is a `ValidEvent` of `event_type`; else FALSE.

    Safe on any row: each step is guarded by CASE (SQL's AND does not promise an order of
    evaluation, CASE does), and the value is never NULL.
    """
    _check_type(event_type)
    a = sql.Identifier(alias)
    return _q(
        "(CASE WHEN {a}.document IS NULL OR {a}.raw_value IS NULL OR {a}.oversized IS TRUE THEN false"
        " WHEN {envelope} IS NOT TRUE THEN false"
        " WHEN {payload} IS NOT TRUE THEN false"
        " WHEN {raw} IS NOT TRUE THEN false"
        " ELSE true END)",
        a=a, envelope=_envelope_ok(event_type, alias), payload=_payload_ok(event_type, alias),
        raw=_raw_text_ok(alias),
    )


def _cast(value: sql.Composable, type_name: str, valid: sql.Composable) -> sql.Composed:
    """`value::type_name` where `valid` (the fast path's own check of that value) holds, else NULL.

    Every server bo supports (PostgreSQL 15+) runs it: `valid` is the same shape `accepts`
    proves, so a cast it lets through cannot fail, and on other rows nothing is cast.
    """
    return _q("(CASE WHEN {g} THEN ({v})::{type} END)", g=valid, v=value, type=sql.SQL(type_name))


def extract(event_type: str, alias: str = "l", names: Sequence[str] = EXTRACTED_COLUMNS) -> sql.Composed:
    """The select list of `EXTRACTED_COLUMNS`: the pydantic model's values for rows `accepts` takes.

    The same columns and types for both event types (NULL where a field does not apply),
    so both can feed one table. On other rows the values mean nothing, but nothing raises
    (each cast is guarded by the check `accepts` makes of that value).
    """
    _check_type(event_type)
    d, p = _doc(alias), _payload(alias)
    fields = _LEDGER_ONLY if event_type == "LedgerEntryUpserted" else _ORDER_ONLY
    columns: dict[str, sql.Composable] = {
        "event_id": _text(d, "event_id"),
        "entity_id": _text(p, _ENTITY_ID[event_type]),
        "amount": _cast(_text(p, "amount"), "numeric", _present(_amount_ok(p))),
        "created_at": _cast(_text(p, "created_at"), "timestamptz", _timestamp_ok(_text(p, "created_at"))),
        "updated_at": _cast(_text(p, "updated_at"), "timestamptz", _timestamp_ok(_text(p, "updated_at"))),
        "version": _cast(_text(p, "version"), "bigint", _present(_version_ok(p))),
        "payload_digest": _q("sha256(convert_to(({p})::text, 'UTF8'))", p=p),
    }
    for name in _TEXT_COLUMNS:
        applies = name in fields or name not in _LEDGER_ONLY | _ORDER_ONLY
        columns[name] = _text(p, name) if applies else sql.SQL("NULL::text")
    return sql.SQL(", ").join(
        _q("{e} AS {n}", e=columns[name], n=sql.Identifier(name)) for name in names
    )


# --- SQL twins of the rules -----------------------------------------------------------------

def status_group_sql(expr: sql.Composable) -> sql.Composed:
    """`rules.status_group`: ASCII statuses compared upper-cased (locale-free), else UNKNOWN."""
    upper = _q("translate({e}, 'abcdefghijklmnopqrstuvwxyz', 'ABCDEFGHIJKLMNOPQRSTUVWXYZ')", e=expr)
    branches = sql.SQL(" ").join(
        _q("WHEN {u} = ANY({statuses}::text[]) THEN {g}", u=upper, statuses=_lit(sorted(statuses)), g=_lit(group))
        for group, statuses in STATUS_GROUPS.items()
    )
    return _q(
        "(CASE WHEN {e} IS NULL THEN NULL::text WHEN octet_length({e}) <> char_length({e}) THEN 'UNKNOWN'"
        " {branches} ELSE 'UNKNOWN' END)",
        e=expr, branches=branches,
    )


def resolved_related_type_sql(related_id: sql.Composable, related_type: sql.Composable) -> sql.Composed:
    """`rules.resolved_related_type`: the value sent; else PAYMENT_ORDER with a related_id; else UNKNOWN."""
    return _q("coalesce({t}, CASE WHEN {i} IS NOT NULL THEN {po} ELSE 'UNKNOWN' END)",
              t=related_type, i=related_id, po=_lit(PAYMENT_ORDER))


def mask_name_sql(expr: sql.Composable) -> sql.Composed:
    """`masking.mask_name`: the first character after Python's whitespace, then `***`."""
    stripped = _q("ltrim({e}, {ws})", e=expr, ws=_lit(python_whitespace()))
    return _q("(CASE WHEN {e} IS NULL THEN NULL::text WHEN {s} = '' THEN '***' ELSE left({s}, 1) || '***' END)",
              e=expr, s=stripped)


def mask_email_sql(expr: sql.Composable) -> sql.Composed:
    """`masking.mask_email`: `j***@e***.com`; without an `@`, the name mask."""
    domain = _q("substr({e}, strpos({e}, '@') + 1)", e=expr)
    tld = _q("(CASE WHEN strpos({d}, '.') = 0 THEN '' ELSE reverse(split_part(reverse({d}), '.', 1)) END)",
             d=domain)
    host = _q("(CASE WHEN strpos({d}, '.') = 0 THEN {d} ELSE left({d}, char_length({d}) - char_length({t}) - 1) END)",
              d=domain, t=tld)
    return _q(
        "(CASE WHEN {e} IS NULL THEN NULL::text WHEN strpos({e}, '@') = 0 THEN {name}"
        " ELSE left(split_part({e}, '@', 1), 1) || '***@' || left({h}, 1) || '***'"
        " || CASE WHEN {t} <> '' THEN '.' || {t} ELSE '' END END)",
        e=expr, name=mask_name_sql(expr), h=host, t=tld,
    )


def mask_digits_sql(expr: sql.Composable) -> sql.Composed:
    """`masking.mask_digits`: the last four (Unicode decimal) digits, `***-****-5678`."""
    digits = _q("regexp_replace({e}, {re}, '', 'g')", e=expr, re=_lit(f"[^{_decimal_digit_class()}]"))
    return _q(
        "(CASE WHEN {e} IS NULL THEN NULL::text WHEN char_length({d}) >= 4 THEN '***-****-' || right({d}, 4)"
        " ELSE '***' END)",
        e=expr, d=digits,
    )


def booked_at_sql(created_at: sql.Composable, updated_at: sql.Composable, ingested_at: sql.Composable
                  ) -> sql.Composed:
    """The ledger's booked_at: created_at, else updated_at, else when the row was ingested."""
    return _q("coalesce({c}, {u}, {i})", c=created_at, u=updated_at, i=ingested_at)


def amount_minor_sql(amount: sql.Composable, currency: sql.Composable) -> sql.Composed:
    """`currencies.amount_minor`: bigint minor units, NULL for an unknown currency, a non-zero
    fraction below the minor unit, or a result beyond bigint."""
    by_exponent: dict[int, list[str]] = {}
    for code, exponent in sorted(MINOR_UNIT_EXPONENT.items()):
        by_exponent.setdefault(exponent, []).append(code)

    def minor(exponent: int) -> sql.Composed:
        scaled = _q("({a} * {f})", a=amount, f=_lit(10**exponent))
        return _q("CASE WHEN {s} = trunc({s}) AND {s} BETWEEN {lo} AND {hi} THEN {s}::bigint END",
                  s=scaled, lo=_lit(BIGINT_MIN), hi=_lit(BIGINT_MAX))

    branches = sql.SQL(" ").join(
        _q("WHEN {c} = ANY({codes}::text[]) THEN {m}", c=currency, codes=_lit(codes), m=minor(exponent))
        for exponent, codes in sorted(by_exponent.items(), key=lambda item: -len(item[1]))
    )
    # |amount| < 1e20 keeps the product far inside numeric (and NaN/Infinity out); larger
    # amounts are beyond bigint in every currency anyway.
    return _q("(CASE WHEN {a} IS NULL OR {c} IS NULL OR NOT (abs({a}) < 1e20) THEN NULL::bigint {branches}"
              " ELSE NULL::bigint END)", a=amount, c=currency, branches=branches)
