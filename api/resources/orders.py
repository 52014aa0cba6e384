"""`GET /admin/payment-orders/{order_id}`: the order (masked), its pair row and its legs."""

from __future__ import annotations

from datetime import datetime

import falcon

from api import representations as rep
from api.auth import ADMIN_READ, require_role
from api.connections import RequestConnections
from api.errors import NotFoundError
from api.resources.ledger import as_of_param
from projections import as_of
from projections.ledger_entries.queries import entries_for_order
from projections.pairs.queries import get_pair
from projections.payment_orders.queries import get_order
from projections.status import data_lag_seconds

SERVING = ("payment_orders", "ledger_entries", "payment_ledger_pairs")


class PaymentOrderResource:
    def __init__(self, connections: RequestConnections) -> None:
        self.connections = connections

    @falcon.before(require_role(ADMIN_READ))
    def on_get(self, req: falcon.Request, resp: falcon.Response, order_id: str) -> None:
        at = as_of_param(req)
        if at is not None:
            self._as_of(req, resp, order_id, at)
            return
        with self.connections.connection(req) as conn:
            order = get_order(conn, order_id)
            entries = entries_for_order(conn, order_id)
            if order is None and not entries:
                raise NotFoundError(f"payment order {order_id!r}")
            pair = get_pair(conn, order_id)
            lag = data_lag_seconds(conn, SERVING)
        resp.media = {
            "order_id": order_id,
            "order": rep.payment_order(order) if order else None,
            "pair": rep.pair(pair) if pair else None,
            "ledger_entries": [rep.ledger_entry(row, lag) for row in entries],
            "data_lag_sec": lag,
        }

    def _as_of(self, req: falcon.Request, resp: falcon.Response, order_id: str, at: datetime) -> None:
        with self.connections.connection(req) as conn:
            past = as_of.order_as_of(conn, order_id, at)
        if past is None:
            raise NotFoundError(f"payment order {order_id!r} as of {rep.timestamp(at)}")
        order, pair, entries = past
        resp.media = {
            "order_id": order_id,
            "order": rep.payment_order(order) if order else None,
            "pair": rep.pair(as_of.pair_mapping(pair)) if pair else None,
            "ledger_entries": [rep.ledger_entry(row, 0.0) for row in entries],
            "data_lag_sec": 0.0,
            "as_of": rep.timestamp(at),
        }
