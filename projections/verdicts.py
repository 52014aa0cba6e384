"""The contract's verdicts on log rows, kept in `bo.event_verdicts` (migration 0008).

A verdict (valid with the model's values, or rejected with reason and detail; and for a
valid row, whether it is the first valid occurrence of its event_id) depends only on the
log row, the rows before it and the contract's code. A batch (projections/batch.py) loads
the verdicts of its rows reached by the code now running (`CONTRACT`, a fingerprint of that
code), judges only the rows without one, and keeps what it judged. A rebuild of a read model
over a judged log therefore validates nothing; code with another fingerprint reads none of
the kept verdicts and judges again, overwriting them as it goes.

The kept verdicts are derived data, like the read tables, and as writable by the projector
and operator roles; `bo log verify` judges the whole log again and compares every kept
verdict (projections/verdicts_verify.py), so an edited or deleted one is found. To replace
them all, an operator empties the table and rebuilds (docs/runbooks/projection-lifecycle.md).
"""

from __future__ import annotations

import hashlib
import unicodedata
from pathlib import Path
from typing import Final

import orjson
import pydantic
from psycopg import sql

# The code a verdict depends on: the models and the SQL fast path, strict JSON, the
# currencies, and the batch's judging (repeated event ids).
_CONTRACT_CODE: Final = (
    "projections/contract.py", "projections/contract_sql.py", "projections/currencies.py",
    "projections/batch.py", "projections/verdicts.py", "eventstore/jsontext.py",
)
_ROOT = Path(__file__).resolve().parents[1]


def _fingerprint() -> str:
    """The contract's code, and what else its verdicts depend on in this process: the versions
    of pydantic (validation, rejection details) and orjson, and the Unicode tables that the
    fast path's whitespace and digit classes are built from."""
    digest = hashlib.sha256()
    for name in _CONTRACT_CODE:
        digest.update(name.encode() + b"\0" + (_ROOT / name).read_bytes() + b"\0")
    digest.update(f"pydantic {pydantic.VERSION}; orjson {orjson.__version__}; unicode {unicodedata.unidata_version}"
                  .encode())
    return digest.hexdigest()[:16]


CONTRACT: Final = _fingerprint()

# Every column of bo.event_verdicts but `contract`, as bo_batch names them.
COLUMNS: Final = (
    "position", "ingested_at", "event_type", "topic", "verdict", "reason", "detail", "occurrence",
    "event_id", "entity_id", "wallet_id", "entry_type", "amount", "currency", "status", "related_id",
    "related_type", "merchant_id", "payment_method", "payer_name", "payer_email", "payer_phone",
    "account_number", "created_at", "updated_at", "version",
)
_LIST = sql.SQL(", ").join(sql.Identifier(c) for c in COLUMNS)

LOAD = sql.SQL("""
    INSERT INTO bo_batch ({columns}, fresh)
    SELECT {columns}, false FROM bo.event_verdicts l
     WHERE {rows} AND l.contract = %(contract)s
""")


def load(rows: sql.Composable) -> sql.Composed:
    """The batch's rows (`rows`: its row predicate over alias `l`) that this code already judged,
    into bo_batch; parameters `contract` (CONTRACT) and the predicate's."""
    return LOAD.format(columns=_LIST, rows=rows)

# What this batch judged. Two runners may judge the same rows at once (`bo project` and a
# `bo rebuild` reading the same range): their verdicts are equal, and the second keeps its
# own only over one reached by other code.
KEEP = sql.SQL("""
    INSERT INTO bo.event_verdicts (contract, {columns})
    SELECT %(contract)s, {columns} FROM bo_batch WHERE fresh ORDER BY position  -- one lock order for all writers
    ON CONFLICT (position) DO UPDATE SET contract = EXCLUDED.contract, {assignments}
     WHERE bo.event_verdicts.contract <> EXCLUDED.contract
""").format(columns=_LIST, assignments=sql.SQL(", ").join(
    sql.SQL("{c} = EXCLUDED.{c}").format(c=sql.Identifier(c)) for c in COLUMNS if c != "position"))
