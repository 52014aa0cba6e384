"""Reading stored ordering keys, and the SQL guard that repeats the newest-wins rule."""

from __future__ import annotations

from collections.abc import Sequence

from psycopg import sql

from projections.projector import DictCursor
from projections.rules import OrderingKey

# SPEC 4.1 in SQL, as a last line of defence behind the Python decision: an upsert
# changes a row only when the incoming key is greater. A missing version or updated_at
# compares lower than any present one: the boolean "is present" comes first.
NEWER_THAN_STORED = sql.SQL("""
    (EXCLUDED.version IS NOT NULL, coalesce(EXCLUDED.version, 0),
     EXCLUDED.updated_at IS NOT NULL, coalesce(EXCLUDED.updated_at, '-infinity'),
     EXCLUDED.ingested_at, EXCLUDED.position)
  > (t.version IS NOT NULL, coalesce(t.version, 0),
     t.updated_at IS NOT NULL, coalesce(t.updated_at, '-infinity'),
     t.ingested_at, t.position)
""")

_SELECT_KEYS = sql.SQL("""
    SELECT {id} AS entity_id, version, updated_at, ingested_at, position
      FROM {table} WHERE {id} = ANY(%(ids)s)
""")


def stored_keys(cur: DictCursor, table: sql.Identifier, id_column: str, ids: Sequence[str]
                ) -> dict[str, OrderingKey]:
    query = _SELECT_KEYS.format(table=table, id=sql.Identifier(id_column))
    return {
        r["entity_id"]: OrderingKey.of(r["version"], r["updated_at"], r["ingested_at"], r["position"])
        for r in cur.execute(query, {"ids": list(set(ids))}).fetchall()
    }


def micros(column: sql.Composable) -> sql.Composed:
    """A timestamptz as integer microseconds since the epoch (exact: extract gives numeric)."""
    return sql.SQL("(extract(epoch FROM {c}) * 1000000)::bigint").format(c=column)


def ordering_key(alias: str) -> sql.Composed:
    """SPEC 4.1's key as a bigint[] that compares like `OrderingKey`: a flag before each optional
    part (missing compares lower), then ingested_at and position. Arrays compare element by
    element, so `max()` over a window is the newest state so far."""
    a = sql.Identifier(alias)
    return sql.SQL(
        "ARRAY[({a}.version IS NOT NULL)::int, coalesce({a}.version, 0), ({a}.updated_at IS NOT NULL)::int,"
        " coalesce({u}, 0), {i}, {a}.position]::bigint[]"
    ).format(a=a, u=micros(sql.SQL("{a}.updated_at").format(a=a)), i=micros(sql.SQL("{a}.ingested_at").format(a=a)))
