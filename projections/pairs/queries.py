"""Typed read functions over `bo.payment_ledger_pairs` (the active version) that the API calls."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row

SELECT_PAIR = """
    SELECT order_id, order_present, debit_tx_id, credit_tx_id, pairing_status, missing,
           first_seen_at, completed_at, projector_version
      FROM bo.payment_ledger_pairs
     WHERE order_id = %(order_id)s
"""


def get_pair(conn: psycopg.Connection[Any], order_id: str) -> dict[str, Any] | None:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(SELECT_PAIR, {"order_id": order_id}).fetchone()
