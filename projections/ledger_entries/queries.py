"""Typed read functions over `bo.ledger_entries` (the active version) that the API calls."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from projections.status import SELECT_DATA_LAG

# Each statement reads the entry, its pair row (if it claims a payment order) and the
# log coordinates of the event that produced it: one indexed look-up per table.
# The first ledger_entries version with `amount_minor`; rows of earlier versions have none.
AMOUNT_MINOR_SINCE_VERSION = 2

_ENTRY_COLUMNS = sql.SQL("""
    SELECT le.tx_id, le.wallet_id, le.entry_type, le.amount, {amount_minor} AS amount_minor, le.currency, le.status,
           le.status_group, le.related_id, le.related_type, le.created_at, le.updated_at,
           le.version, le.booked_at, le.event_id, le.ingested_at, le.position,
           le.projector_version, le.version_missing_cnt,
           p.pairing_status, p.debit_tx_id, p.credit_tx_id, p.missing,
           l.source, l.topic, l."partition", l."offset", l.source_file, l.source_line
      FROM {entries} le
      LEFT JOIN bo.payment_ledger_pairs p
             ON le.related_type = 'PAYMENT_ORDER' AND p.order_id = le.related_id
      JOIN bo.event_log l ON l.position = le.position
""")
_ENTRY_WITH_PAIR_AND_SOURCE = _ENTRY_COLUMNS.format(
    amount_minor=sql.SQL("le.amount_minor"), entries=sql.Identifier("bo", "ledger_entries"))

SELECT_TX = sql.SQL("""{entries}
     WHERE le.tx_id = %(tx_id)s
""").format(entries=_ENTRY_WITH_PAIR_AND_SOURCE)

SELECT_BY_RELATED = sql.SQL("""{entries}
     WHERE le.related_id = %(related_id)s
     ORDER BY le.booked_at, le.tx_id
""").format(entries=_ENTRY_WITH_PAIR_AND_SOURCE)

# Keyset pagination, newest first by (booked_at, tx_id): stable under concurrent inserts.
# One branch per declared version, reading that version's own table with its own ORDER BY and
# LIMIT (only the active one answers): the wallet index is then read in order and stops after
# one page. Through the view's UNION ALL the planner would fetch and sort every entry of the
# wallet (measured: 45 ms for a wallet of 1,000 entries, against under 1 ms).
_PAGE_BRANCH = sql.SQL("""
    ({entries}
      WHERE {version} = (SELECT p.version FROM bo.projectors p WHERE p.name = 'ledger_entries' AND p.status = 'ACTIVE')
        AND le.wallet_id = %(wallet_id)s
        AND (%(status_group)s::text IS NULL OR le.status_group = %(status_group)s::text)
        AND (%(from)s::timestamptz IS NULL OR le.booked_at >= %(from)s::timestamptz)
        AND (%(to)s::timestamptz IS NULL OR le.booked_at < %(to)s::timestamptz)
        AND (%(after_at)s::timestamptz IS NULL
             OR (le.booked_at, le.tx_id) < (%(after_at)s::timestamptz, %(after_tx)s::text))
      ORDER BY le.booked_at DESC, le.tx_id DESC
      LIMIT %(limit)s)
""")


def _wallet_page_statement() -> sql.Composed:
    from projections.registry import DECLARED  # every declared version of the read model

    branches = sql.SQL(" UNION ALL ").join(
        _PAGE_BRANCH.format(version=sql.Literal(cls.version), entries=_ENTRY_COLUMNS.format(
            entries=cls.table(),
            amount_minor=sql.SQL("le.amount_minor" if cls.version >= AMOUNT_MINOR_SINCE_VERSION else "NULL::bigint")))
        for cls in DECLARED if cls.name == "ledger_entries")
    return sql.SQL("{branches} ORDER BY booked_at DESC, tx_id DESC").format(branches=branches)




SELECT_WALLET_PAGE = _wallet_page_statement()


def has_amount_minor(row: Mapping[str, Any]) -> bool:
    return int(row["projector_version"]) >= AMOUNT_MINOR_SINCE_VERSION


@dataclass(frozen=True, slots=True)
class WalletFilter:
    wallet_id: str
    status_group: str | None = None
    from_: datetime | None = None
    to: datetime | None = None


@dataclass(frozen=True, slots=True)
class Keyset:
    booked_at: datetime
    tx_id: str


def get_tx(conn: psycopg.Connection[Any], tx_id: str) -> dict[str, Any] | None:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(SELECT_TX, {"tx_id": tx_id}).fetchone()


def get_tx_and_lag(conn: psycopg.Connection[Any], tx_id: str, serving: Sequence[str]
                   ) -> tuple[dict[str, Any] | None, float]:
    """The entry and the serving projections' data lag, both sent in one round trip (pipeline mode)."""
    with conn.pipeline():
        entry = conn.cursor(row_factory=dict_row).execute(SELECT_TX, {"tx_id": tx_id})
        lag = conn.cursor().execute(SELECT_DATA_LAG, {"names": list(serving)})
    row, lag_row = entry.fetchone(), lag.fetchone()
    return row, round(float(lag_row[0]), 3) if lag_row else 0.0


def entries_for_order(conn: psycopg.Connection[Any], order_id: str) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(SELECT_BY_RELATED, {"related_id": order_id}).fetchall()


def wallet_page(conn: psycopg.Connection[Any], wallet: WalletFilter, after: Keyset | None,
                limit: int) -> tuple[list[dict[str, Any]], Keyset | None]:
    """Up to `limit` entries after `after`, and the keyset of the next page (None on the last)."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(SELECT_WALLET_PAGE, {
            "wallet_id": wallet.wallet_id, "status_group": wallet.status_group,
            "from": wallet.from_, "to": wallet.to,
            "after_at": after.booked_at if after else None,
            "after_tx": after.tx_id if after else None,
            "limit": limit + 1,
        }).fetchall()
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    return rows[:limit], Keyset(last["booked_at"], last["tx_id"])
