"""Cursors are opaque and tamper-evident."""

from __future__ import annotations

import pytest

from api.cursor import CursorCodec, InvalidCursorError

codec = CursorCodec(b"k" * 32)
QUERY = {"w": "w-1", "s": None}


def test_round_trip() -> None:
    cursor = codec.encode(QUERY, {"a": "2026-01-01T00:00:00Z", "x": "tx-9"})
    assert codec.decode(cursor, QUERY) == {"a": "2026-01-01T00:00:00Z", "x": "tx-9"}


@pytest.mark.parametrize("mangle", [
    lambda c: c[:-2] + ("AA" if not c.endswith("AA") else "BB"),
    lambda c: "x" + c,
    lambda c: c.replace(".", ""),
    lambda c: "garbage",
])
def test_forged_or_garbled_cursor_is_rejected(mangle: object) -> None:
    cursor = codec.encode(QUERY, {"a": "2026-01-01T00:00:00Z", "x": "tx-9"})
    with pytest.raises(InvalidCursorError):
        codec.decode(mangle(cursor), QUERY)  # type: ignore[operator]


def test_cursor_of_another_query_is_rejected() -> None:
    cursor = codec.encode(QUERY, {"a": "2026-01-01T00:00:00Z", "x": "tx-9"})
    with pytest.raises(InvalidCursorError):
        codec.decode(cursor, {"w": "w-2", "s": None})


def test_cursor_signed_with_another_key_is_rejected() -> None:
    cursor = CursorCodec(b"z" * 32).encode(QUERY, {"a": "2026-01-01T00:00:00Z", "x": "tx-9"})
    with pytest.raises(InvalidCursorError):
        codec.decode(cursor, QUERY)
