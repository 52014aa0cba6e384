"""Opaque, tamper-evident page cursors: a keyset and the query it belongs to, HMAC-signed.

A cursor is `base64url(json) "." base64url(HMAC-SHA256(secret, json))`. It binds the
wallet and filters of the request that issued it, so it cannot be replayed on another
query; anything forged, garbled or foreign is rejected with `InvalidCursorError` (a 400).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any


class InvalidCursorError(ValueError):
    pass


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class CursorCodec:
    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the cursor secret must be at least 16 bytes")
        self._secret = secret

    def encode(self, query: Mapping[str, Any], position: Mapping[str, Any]) -> str:
        body = json.dumps({"q": dict(query), "p": dict(position)}, sort_keys=True,
                          separators=(",", ":")).encode("utf-8")
        return f"{_b64(body)}.{_b64(self._sign(body))}"

    def decode(self, cursor: str, query: Mapping[str, Any]) -> dict[str, Any]:
        """The keyset position of a cursor issued for this same `query`."""
        try:
            body_text, signature_text = cursor.split(".", 1)
            body, signature = _unb64(body_text), _unb64(signature_text)
        except (ValueError, binascii.Error) as exc:
            raise InvalidCursorError("the cursor is not one this API issued") from exc
        if not hmac.compare_digest(signature, self._sign(body)):
            raise InvalidCursorError("the cursor is not one this API issued")
        content = json.loads(body)
        if content.get("q") != json.loads(json.dumps(dict(query))):
            raise InvalidCursorError("the cursor belongs to another query")
        position: dict[str, Any] = content["p"]
        return position

    def _sign(self, body: bytes) -> bytes:
        return hmac.new(self._secret, body, hashlib.sha256).digest()


def cursor_position(codec: CursorCodec, cursor: str | None, query: Mapping[str, Any], key: str) -> int | None:
    """The integer position stored under `key` in a `cursor` query parameter bound to `query`;
    None without a cursor; a 400 naming `cursor` for a forged, garbled or foreign one."""
    from api.errors import BadRequestError  # errors are the API's; the codec knows nothing of HTTP

    if cursor is None:
        return None
    try:
        return int(codec.decode(cursor, query)[key])
    except (InvalidCursorError, KeyError, TypeError, ValueError) as exc:
        raise BadRequestError("cursor", str(exc) or "not a valid cursor") from exc
