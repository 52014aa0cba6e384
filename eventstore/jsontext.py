"""JSON as bo reads it: strict (RFC 8259), numbers as Decimal, and what PostgreSQL can store.

Python's `json` module accepts things that are not JSON (`NaN`, `Infinity`) or that no
UTF-8 text can carry (lone surrogate escapes such as `"\\ud800"`). bo treats those as not
JSON. Valid JSON that PostgreSQL's jsonb cannot hold (a `\\u0000` escape, a number beyond
`numeric`'s range) is still an event, but its `document` column stays empty: the raw
bytes remain the record.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple

import orjson

_encode_string: Callable[[str], str] = json.encoder.encode_basestring

_SUSPECT_ESCAPE = re.compile(r"\\u(0000|[dD][89a-fA-F])")
# PostgreSQL numeric: at most 131072 digits before the point and 16383 after.
_MAX_ADJUSTED_EXPONENT = 131_071
_MIN_EXPONENT = -16_383


class ParsedJson(NamedTuple):  # a named tuple: built for every message at ingest
    value: Any
    storable_as_jsonb: bool


# orjson refuses what is not JSON and numbers too large for a double, but reads 1e-20000
# as 0.0, and PostgreSQL numeric holds at most 16383 fractional digits: a negative exponent
# of 4 digits or more, or a value long enough to hold such a fraction, takes the exact path.
_LONG_ENOUGH_FOR_AN_UNUSUAL_FRACTION = 16_000


def _maybe_beyond_numeric(value: bytes) -> bool:
    if len(value) > _LONG_ENOUGH_FOR_AN_UNUSUAL_FRACTION:
        return True
    for marker in (b"e-", b"E-"):
        at = value.find(marker)
        while at != -1:
            digits = value[at + 2:at + 6]
            if value[at - 1:at].isdigit() and len(digits) == 4 and digits.isdigit():
                return True  # a 4-digit negative exponent: let the exact path judge the scale
            at = value.find(marker, at + 2)
    return False


def parse_bytes(value: bytes) -> ParsedJson:
    """`parse` for raw message bytes, with orjson's fast path for ordinary messages.

    Only for reading fields: numbers may come back as floats. Exact numbers (money)
    come from `parse`.
    """
    if not _maybe_beyond_numeric(value):
        try:
            fast = orjson.loads(value)
        except orjson.JSONDecodeError:
            pass  # the exact path below says why (or accepts what orjson would not)
        else:
            return ParsedJson(fast, storable_as_jsonb=b"\\u0000" not in value)
    return parse(value.decode("utf-8"))


def parse(text: str) -> ParsedJson:
    """Parse strictly; raise ValueError (with a reason) when the text is not JSON."""
    out_of_range = False

    def number(token: str) -> Decimal:
        nonlocal out_of_range
        value = Decimal(token)
        exponent = value.as_tuple().exponent
        if (isinstance(exponent, int) and exponent < _MIN_EXPONENT) or (
                value and value.adjusted() > _MAX_ADJUSTED_EXPONENT):
            out_of_range = True  # zero too: 0e-20000 carries a scale numeric cannot hold
        return value

    def constant(token: str) -> Any:
        raise ValueError(f"{token} is not a JSON value")

    try:
        value = json.loads(text, parse_float=number, parse_constant=constant)
    except RecursionError as exc:
        raise ValueError("the value nests too deeply") from exc
    has_nul = False
    if _SUSPECT_ESCAPE.search(text):
        has_nul = _check_strings(value)
    return ParsedJson(value, storable_as_jsonb=not (out_of_range or has_nul or "\x00" in text))


def _check_strings(value: Any) -> bool:
    """Raise on a lone surrogate anywhere; answer whether a NUL character appears."""
    stack, has_nul = [value], False
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise ValueError("a string holds a lone UTF-16 surrogate escape") from exc
            has_nul = has_nul or "\x00" in item
    return has_nul


def canonical(value: Any) -> str:
    """Canonical JSON text: sorted keys, no spaces, numbers exactly as parsed (`1.0` ≠ `"1.0"`).

    Iterative, so that any document the parser accepted can be digested, however deep.
    Strings go through the json module's own C encoder (what `json.dumps(s,
    ensure_ascii=False)` calls), without its per-call overhead: this runs for the payload
    of every repeated event id a projector judges.
    """
    out: list[str] = []
    stack: list[Any] = [value]  # values to write, and literal text (_Text) to copy
    while stack:
        item = stack.pop()
        if isinstance(item, _Text):
            out.append(item.text)
        elif isinstance(item, str):
            out.append(_encode_string(item))
        elif isinstance(item, dict):
            parts: list[Any] = [_Text("{")]
            for n, (key, member) in enumerate(sorted(item.items())):
                parts += [_Text(("," if n else "") + _encode_string(key) + ":"), member]
            parts.append(_Text("}"))
            stack.extend(reversed(parts))
        elif isinstance(item, list):
            parts = [_Text("[")]
            for n, member in enumerate(item):
                parts += [_Text(","), member] if n else [member]
            parts.append(_Text("]"))
            stack.extend(reversed(parts))
        elif isinstance(item, Decimal):
            out.append(str(item))
        else:
            out.append(json.dumps(item, ensure_ascii=False))
    return "".join(out)


@dataclass(frozen=True, slots=True)
class _Text:
    text: str
