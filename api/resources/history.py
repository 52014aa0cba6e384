"""`GET /admin/tx/{tx_id}/history` and `GET /admin/payment-orders/{order_id}/history` (ADMIN_AUDIT, `?unmask=true`)."""

from __future__ import annotations

import falcon

from api import representations as rep
from api.auth import ADMIN_AUDIT, require_role
from api.connections import RequestConnections
from api.cursor import CursorCodec, cursor_position
from api.errors import BadRequestError
from api.resources.ledger import limit_param
from projections import history


def unmask_param(req: falcon.Request) -> bool:
    """`unmask=true` (SPEC 6): the payer's data as logged, for auditors only (the route needs
    ADMIN_AUDIT already); the audit row records that it was asked for."""
    value = req.get_param("unmask")
    if value is None or value == "false":
        return False
    if value == "true":
        return True
    raise BadRequestError("unmask", "must be true or false")


class HistoryResource:
    def __init__(self, connections: RequestConnections, cursors: CursorCodec, subject: history.Subject) -> None:
        self.connections = connections
        self.cursors = cursors
        self.subject = subject

    @falcon.before(require_role(ADMIN_AUDIT))
    def on_get(self, req: falcon.Request, resp: falcon.Response, **ids: str) -> None:
        entity_id = next(iter(ids.values()))
        limit = limit_param(req.get_param("limit"))
        unmask = unmask_param(req)
        identity = {"h": self.subject.projector, "id": entity_id}
        after = cursor_position(self.cursors, req.get_param("cursor"), identity, "p") or 0
        with self.connections.connection(req) as conn:
            rows, following = history.history_page(conn, self.subject, entity_id, after, limit)
        resp.media = {
            "items": [rep.history_item(row, unmask=unmask) for row in rows],
            "next_cursor": self.cursors.encode(identity, {"p": following}) if following is not None else None,
        }
