"""Read functions about the projections themselves: checkpoints and data lag."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row

from projections.registry import DECLARED

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


# One row per registered projector version: where it is, how far behind, what it rejected.
SELECT_PROJECTOR_STATUS = """
    WITH head AS (SELECT coalesce(max(position), 0) AS position FROM bo.event_log)
    SELECT p.name, p.version, p.status, coalesce(t.notification_id, 0) AS checkpoint, p.fingerprint,
           p.build_started_at, p.built_at, p.activated_at, p.deactivated_at, p.retired_at,
           extract(epoch FROM p.built_at - p.build_started_at) AS build_seconds,
           head.position AS head,
           head.position - coalesce(t.notification_id, 0) AS lag_events,  -- positions are dense (eventstore/log.py)
           greatest(0, coalesce(extract(epoch FROM clock_timestamp() - (
                SELECT l.ingested_at FROM bo.event_log l WHERE l.position > coalesce(t.notification_id, 0)
                 ORDER BY l.position LIMIT 1)), 0)) AS lag_seconds,
           (SELECT count(*) FROM bo.dead_letters d WHERE d.projector = p.name
               AND d.projector_version = p.version AND d.status = 'OPEN') AS open_dead_letters
      FROM bo.projectors p
      CROSS JOIN head
      LEFT JOIN bo.projection_tracking t ON t.application_name = p.name || ':v' || p.version
     ORDER BY p.name, p.version
"""

# SPEC 4.3 and 4.1 quality figures of the active versions.
SELECT_QUALITY = """
    SELECT (SELECT count(*) FROM bo.payment_ledger_pairs) AS pairs,
           (SELECT count(*) FROM bo.payment_ledger_pairs WHERE pairing_status <> 'COMPLETE') AS incomplete_pairs,
           (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM completed_at - first_seen_at))
              FROM bo.payment_ledger_pairs WHERE completed_at IS NOT NULL) AS pairing_latency_p50_s,
           (SELECT percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM completed_at - first_seen_at))
              FROM bo.payment_ledger_pairs WHERE completed_at IS NOT NULL) AS pairing_latency_p95_s,
           (SELECT coalesce(sum(version_missing_cnt), 0) FROM bo.ledger_entries)
         + (SELECT coalesce(sum(version_missing_cnt), 0) FROM bo.payment_orders) AS version_missing_cnt
"""


# The pairing latency of complete pairs, bucketed by the server: the number of bounds each
# latency exceeds (width_bucket), so Prometheus's cumulative buckets follow by summing.
SELECT_PAIRING_LATENCY = """
    SELECT width_bucket(s, %(bounds)s::float8[]) AS above, count(*) AS n, sum(s) AS total
      FROM (SELECT extract(epoch FROM completed_at - first_seen_at)::float8 AS s
              FROM bo.payment_ledger_pairs WHERE completed_at IS NOT NULL) AS latency
     GROUP BY 1
"""


@dataclass(frozen=True, slots=True)
class LatencyHistogram:
    buckets: list[tuple[float, int]]  # (upper bound, cumulative count)
    count: int
    total: float


def pairing_latency_histogram(conn: psycopg.Connection[Any], bounds: Sequence[float]) -> LatencyHistogram:
    """Cumulative counts of pairing latencies at or under each bound (a latency exactly on a
    bound counts in the next one: width_bucket's lower bounds are inclusive)."""
    rows = conn.execute(SELECT_PAIRING_LATENCY, {"bounds": list(bounds)}).fetchall()
    per_bucket = {int(above): int(n) for above, n, _ in rows}
    cumulative, buckets = 0, []
    for i, bound in enumerate(bounds):
        cumulative += per_bucket.get(i, 0)
        buckets.append((bound, cumulative))
    return LatencyHistogram(buckets, sum(per_bucket.values()), float(sum(float(t or 0) for _, _, t in rows)))


def projector_status(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    """Each registered version; `code_changed` when its code differs from what built it."""
    fingerprints = {(cls.name, cls.version): cls.fingerprint() for cls in DECLARED}
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(SELECT_PROJECTOR_STATUS).fetchall()
    for row in rows:
        declared = fingerprints.get((row["name"], row["version"]))
        row["code_changed"] = bool(row["fingerprint"]) and declared is not None and declared != row["fingerprint"]
        row["declared_in_code"] = declared is not None
    return rows


def quality(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(SELECT_QUALITY).fetchone()
    assert row is not None
    pairs = int(row["pairs"])
    return {
        "pair_incomplete_ratio": round(int(row["incomplete_pairs"]) / pairs, 4) if pairs else 0.0,
        "pairs": pairs,
        "pairing_latency_p50_s": _seconds(row["pairing_latency_p50_s"]),
        "pairing_latency_p95_s": _seconds(row["pairing_latency_p95_s"]),
        "version_missing_cnt": int(row["version_missing_cnt"]),
    }


def _seconds(value: Any) -> float | None:
    return None if value is None else round(float(value), 3)
