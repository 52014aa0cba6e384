"""Read functions about the projections themselves: checkpoints and data lag."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

# SPEC 5, data_lag_sec: 0 when every log row has been applied by the slowest of the
# named active projectors, else the age of the oldest row it has not applied yet.
SELECT_DATA_LAG = """
    WITH checkpoint AS (
        SELECT coalesce(min(coalesce(t.notification_id, 0)), 0) AS position
          FROM bo.projectors p
          LEFT JOIN bo.projection_tracking t ON t.application_name = p.name || ':v' || p.version
         WHERE p.status = 'ACTIVE' AND p.name = ANY(%(names)s)
    )
    SELECT greatest(0, coalesce(extract(epoch FROM clock_timestamp() - oldest.ingested_at), 0))
      FROM checkpoint
      LEFT JOIN LATERAL (
            SELECT ingested_at FROM bo.event_log
             WHERE position > checkpoint.position ORDER BY position LIMIT 1
      ) AS oldest ON true
"""


def data_lag_seconds(conn: psycopg.Connection[Any], names: Sequence[str]) -> float:
    row = conn.execute(SELECT_DATA_LAG, {"names": list(names)}).fetchone()
    return round(float(row[0]), 3) if row else 0.0
