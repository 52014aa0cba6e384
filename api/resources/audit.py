"""`GET /admin/audit-log` (ADMIN_AUDIT): the access audit trail, newest first."""

from __future__ import annotations

import falcon

from api import audit_log
from api import representations as rep
from api.auth import ADMIN_AUDIT, require_role
from api.connections import RequestConnections
from api.cursor import CursorCodec, cursor_position
from api.resources.ledger import limit_param, time_param


class AuditLogResource:
    def __init__(self, connections: RequestConnections, cursors: CursorCodec) -> None:
        self.connections = connections
        self.cursors = cursors

    @falcon.before(require_role(ADMIN_AUDIT))
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        where = audit_log.AuditFilter(actor=req.get_param("actor"), resource=req.get_param("resource"),
                                      from_=time_param(req, "from"), to=time_param(req, "to"))
        limit = limit_param(req.get_param("limit"))
        identity = {"a": where.actor, "r": where.resource, "f": rep.timestamp(where.from_),
                    "t": rep.timestamp(where.to)}
        before = cursor_position(self.cursors, req.get_param("cursor"), identity, "i")
        with self.connections.connection(req) as conn:
            rows, following = audit_log.audit_page(conn, where, before, limit)
        resp.media = {
            "items": [rep.audit_entry(row) for row in rows],
            "next_cursor": self.cursors.encode(identity, {"i": following}) if following is not None else None,
        }
