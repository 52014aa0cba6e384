"""`GET /admin/tx/{tx_id}` and `GET /admin/wallets/{wallet_id}/tx`."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import falcon

from api import representations as rep
from api.auth import ADMIN_AUDIT, ADMIN_READ, require_role
from api.connections import RequestConnections
from api.cursor import CursorCodec, InvalidCursorError
from api.errors import BadRequestError, NotFoundError
from projections import as_of
from projections.ledger_entries import queries
from projections.rules import STATUS_GROUPS
from projections.status import data_lag_seconds

SERVING = ("ledger_entries", "payment_ledger_pairs")
MAX_LIMIT, DEFAULT_LIMIT = 200, 50


class TxResource:
    def __init__(self, connections: RequestConnections) -> None:
        self.connections = connections

    @falcon.before(require_role(ADMIN_READ))
    def on_get(self, req: falcon.Request, resp: falcon.Response, tx_id: str) -> None:
        at = as_of_param(req)
        if at is not None:
            with self.connections.connection(req) as conn:
                past = as_of.tx_as_of(conn, tx_id, at)
            if past is None:
                raise NotFoundError(f"transaction {tx_id!r} as of {rep.timestamp(at)}")
            resp.media = {**rep.ledger_entry(past, 0.0), "as_of": rep.timestamp(at)}
            return
        with self.connections.connection(req) as conn:
            row, lag = queries.get_tx_and_lag(conn, tx_id, SERVING)
        if row is None:
            raise NotFoundError(f"transaction {tx_id!r}")
        resp.media = rep.ledger_entry(row, lag)


class WalletTxResource:
    def __init__(self, connections: RequestConnections, cursors: CursorCodec) -> None:
        self.connections = connections
        self.cursors = cursors

    @falcon.before(require_role(ADMIN_READ))
    def on_get(self, req: falcon.Request, resp: falcon.Response, wallet_id: str) -> None:
        wallet = queries.WalletFilter(
            wallet_id=wallet_id,
            status_group=_status_group(req.get_param("status_group")),
            from_=time_param(req, "from"),
            to=time_param(req, "to"),
        )
        limit = limit_param(req.get_param("limit"))
        identity = {"w": wallet_id, "s": wallet.status_group,
                    "f": rep.timestamp(wallet.from_), "t": rep.timestamp(wallet.to)}
        after = self._after(req.get_param("cursor"), identity)
        with self.connections.connection(req) as conn:
            rows, following = queries.wallet_page(conn, wallet, after, limit)
            lag = data_lag_seconds(conn, SERVING)
        resp.media = {
            "items": [rep.ledger_entry(row, lag) for row in rows],
            "next_cursor": self.cursors.encode(identity, {
                "a": rep.timestamp(following.booked_at), "x": following.tx_id,
            }) if following else None,
            "data_lag_sec": lag,
        }

    def _after(self, cursor: str | None, identity: dict[str, Any]) -> queries.Keyset | None:
        if cursor is None:
            return None
        try:
            position = self.cursors.decode(cursor, identity)
            return queries.Keyset(datetime.fromisoformat(position["a"]), str(position["x"]))
        except (InvalidCursorError, KeyError, TypeError, ValueError) as exc:
            raise BadRequestError("cursor", str(exc) or "not a valid cursor") from exc


def limit_param(value: str | None) -> int:
    """`limit`: 1 to 200, default 50 (SPEC 5)."""
    if value is None:
        return DEFAULT_LIMIT
    if not re.fullmatch(r"[0-9]{1,3}", value) or not 1 <= int(value) <= MAX_LIMIT:
        raise BadRequestError("limit", f"must be an integer from 1 to {MAX_LIMIT}")
    return int(value)


def as_of_param(req: falcon.Request) -> datetime | None:
    """`as_of` (SPEC 5): an RFC 3339 time; reading the past is an auditor's (ADMIN_AUDIT)."""
    at = time_param(req, "as_of")
    if at is not None:
        require_role(ADMIN_AUDIT)(req, falcon.Response(), None, {})
    return at


def _status_group(value: str | None) -> str | None:
    if value is None:
        return None
    groups = (*STATUS_GROUPS, "UNKNOWN")
    if not value.isascii() or value.upper() not in groups:
        raise BadRequestError("status_group", f"must be one of {', '.join(groups)}")
    return value.upper()


def time_param(req: falcon.Request, name: str) -> datetime | None:
    value = req.get_param(name)
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError as exc:
        raise BadRequestError(name, "must be an RFC 3339 timestamp with an offset") from exc
    if parsed.tzinfo is None:
        raise BadRequestError(name, "must be an RFC 3339 timestamp with an offset")
    return parsed
