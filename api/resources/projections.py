"""`GET /admin/projections` (ADMIN_READ): each projector version, where it is, what it rejected."""

from __future__ import annotations

import falcon

from api import representations as rep
from api.auth import ADMIN_READ, require_role
from api.connections import RequestConnections
from projections.status import projector_status, quality


class ProjectionsResource:
    def __init__(self, connections: RequestConnections) -> None:
        self.connections = connections

    @falcon.before(require_role(ADMIN_READ))
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        with self.connections.connection(req) as conn:
            versions, figures = projector_status(conn), quality(conn)
        resp.media = {"projectors": [rep.projector_version(v) for v in versions], "quality": figures}
