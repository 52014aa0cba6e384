"""The servers bench/api.py compares, each under the same gunicorn as `bo serve` (2 sync workers).

    python bench/api_server.py VARIANT HOST:PORT [METRICS_PORT]    (started by bench/api.py, not by hand)

- `bare`: the ceiling. A bare Falcon app whose one resource takes a connection from a
  psycopg_pool (no liveness check) and runs bo's own transaction statement (the entry with
  its pair, by primary key): no authentication, no audit row, no middleware, no data-lag
  query.
- `open`: bo's API with authentication and the audit trail left out (every caller holds
  both roles).
- `authenticated`: bo's API with bearer tokens verified, without the audit trail.
- `unobserved`: `production` without its request metrics.
- `production`: bo's API as `bo serve` runs it: tokens verified, one audit row per request,
  request metrics in gunicorn's multiprocess directory, tracing off (OTEL_TRACES_EXPORTER unset).
- `observed`: `production` with tracing on (bench/api.py sets OTEL_TRACES_EXPORTER=otlp
  towards bench/observing.py) and its metrics served by the master on METRICS_PORT (and scraped).

Every variant runs with the multiprocess metrics directory `bo serve` makes.

The database and the development issuer come from BO_DATABASE_URL and BO_HOME, as for
`bo serve`.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import falcon  # noqa: E402
from psycopg.rows import dict_row  # noqa: E402
from psycopg_pool import ConnectionPool  # noqa: E402

from api.app import create_app  # noqa: E402
from api.auth import ROLES, Principal  # noqa: E402
from bo.embedded import database_url  # noqa: E402
from bo.serve import GunicornApp, app_deps, gunicorn_options, prepare_worker  # noqa: E402
from bo.settings import Settings  # noqa: E402
from projections.ledger_entries.queries import SELECT_TX  # noqa: E402
from telemetry.metrics import multiprocess_directory  # noqa: E402

VARIANTS = ("bare", "open", "authenticated", "unobserved", "production", "observed")


class Anyone:
    """No token is read: every caller is a reader and an auditor."""

    def authenticate(self, req: falcon.Request) -> Principal:
        return Principal("bench", ROLES)


class BareTx:
    def __init__(self, url: str) -> None:
        # No liveness check per checkout, no session options: the least a pooled look-up can be.
        self.pool = ConnectionPool(url, min_size=4, max_size=4, kwargs={"autocommit": True}, name="bare")

    def on_get(self, req: falcon.Request, resp: falcon.Response, tx_id: str) -> None:
        with self.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(SELECT_TX, {"tx_id": tx_id}).fetchone()
        if row is None:
            raise falcon.HTTPNotFound()
        resp.text = json.dumps(row, default=str)
        resp.content_type = falcon.MEDIA_JSON


class VariantApp(GunicornApp):
    def __init__(self, variant: str, settings: Settings, url: str, options: dict[str, Any]) -> None:
        self.variant = variant
        super().__init__(settings, url, options)

    def load(self) -> falcon.App[falcon.Request, falcon.Response]:
        prepare_worker(self.settings)  # as bo serve: metrics in the multiprocess directory, tracing as OTEL_* say
        if self.variant == "bare":
            app = falcon.App()
            app.add_route("/admin/tx/{tx_id}", BareTx(self.url))
            return app
        deps = app_deps(self.settings, self.url)
        if self.variant == "open":
            deps = replace(deps, authenticator=Anyone(), audited=False)
        elif self.variant == "authenticated":
            deps = replace(deps, audited=False)
        elif self.variant == "unobserved":
            deps = replace(deps, metered=False)
        return create_app(deps)


def main() -> None:
    variant, bind = sys.argv[1:3]
    metrics_port = int(sys.argv[3]) if len(sys.argv) > 3 else None
    if variant not in VARIANTS:
        raise SystemExit(f"variant must be one of {', '.join(VARIANTS)}")
    settings = Settings()
    options = gunicorn_options(settings, bind, workers=2, metrics_port=metrics_port)
    with multiprocess_directory():
        VariantApp(variant, settings, database_url(settings), options).run()


if __name__ == "__main__":
    main()
