"""Typed read functions over `bo.payment_orders` and its pair row that the API calls."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row

SELECT_ORDER = """
    SELECT o.order_id, o.wallet_id, o.merchant_id, o.amount, o.currency, o.status,
           o.status_group, o.payment_method, o.payer_name_masked, o.payer_email_masked,
           o.payer_phone_masked, o.account_number_masked, o.created_at, o.updated_at,
           o.version, o.event_id, o.ingested_at, o.position, o.projector_version,
           o.version_missing_cnt,
           l.source, l.topic, l."partition", l."offset", l.source_file, l.source_line
      FROM bo.payment_orders o
      JOIN bo.event_log l ON l.position = o.position
     WHERE o.order_id = %(order_id)s
"""

def get_order(conn: psycopg.Connection[Any], order_id: str) -> dict[str, Any] | None:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(SELECT_ORDER, {"order_id": order_id}).fetchone()
