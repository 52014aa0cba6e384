"""`bo projections diff NAME A B`: how two versions' read tables differ, before a cut-over.

Rows are matched on the read model's key. A row only in B is *added*, only in A *removed*;
a row in both is *changed* when any column they share differs (`IS DISTINCT FROM`, so
NULLs compare as values). Bookkeeping columns that name the version are not compared.
Columns only one version has are listed, not counted as changes. Set-based: one pass for
the counts, one small query per changed column for its samples.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from eventsourcing.postgres import PostgresDatastore
from psycopg import sql

from projections import registry
from projections.errors import ProjectionError
from projections.projector import DictCursor, Projector

NOT_COMPARED = frozenset({"projector_version"})

SELECT_COLUMNS = """
    SELECT column_name FROM information_schema.columns
     WHERE table_schema = 'bo' AND table_name = %(table)s ORDER BY ordinal_position
"""

COUNTS = sql.SQL("""
    SELECT count(*) FILTER (WHERE a.{key} IS NULL) AS added,
           count(*) FILTER (WHERE b.{key} IS NULL) AS removed,
           count(*) FILTER (WHERE a.{key} IS NOT NULL AND b.{key} IS NOT NULL AND ({any_changed})) AS changed,
           {per_column}
      FROM {a} a FULL JOIN {b} b ON a.{key} = b.{key}
""")

SAMPLES = sql.SQL("""
    SELECT a.{key} AS key, a.{column}::text AS a_value, b.{column}::text AS b_value
      FROM {a} a JOIN {b} b ON a.{key} = b.{key}
     WHERE a.{column} IS DISTINCT FROM b.{column}
     ORDER BY a.{key} LIMIT %(limit)s
""")

ONLY_IN = sql.SQL("""
    SELECT x.{key} AS key FROM {x} x WHERE NOT EXISTS (SELECT 1 FROM {y} y WHERE y.{key} = x.{key})
     ORDER BY x.{key} LIMIT %(limit)s
""")


SELECT_STATE = """
    SELECT p.status, coalesce(t.notification_id, 0) AS checkpoint
      FROM bo.projectors p
      LEFT JOIN bo.projection_tracking t ON t.application_name = p.name || ':v' || p.version
     WHERE p.name = %(name)s AND p.version = %(version)s
"""


class DiffRefusedError(ProjectionError):
    pass


@dataclass
class VersionDiff:
    name: str
    a: int
    b: int
    rows_a: int = 0
    rows_b: int = 0
    added: int = 0
    removed: int = 0
    changed: int = 0
    changed_by_column: dict[str, int] = field(default_factory=dict)
    samples: dict[str, list[dict[str, str | None]]] = field(default_factory=dict)
    added_samples: list[str] = field(default_factory=list)
    removed_samples: list[str] = field(default_factory=list)
    only_in_a: list[str] = field(default_factory=list)
    only_in_b: list[str] = field(default_factory=list)
    status_a: str = ""
    status_b: str = ""
    checkpoint_a: int = 0
    checkpoint_b: int = 0

    @property
    def differ(self) -> bool:
        return bool(self.added or self.removed or self.changed)


def diff(datastore: PostgresDatastore, name: str, a: int, b: int, *, samples: int = 5) -> VersionDiff:
    pa, pb = registry.declared(name, a), registry.declared(name, b)
    result = VersionDiff(name, a, b)
    with datastore.transaction(commit=False) as cur:
        cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")  # one snapshot for every query
        for projector, side in ((pa, "a"), (pb, "b")):
            state = cur.execute(SELECT_STATE, {"name": name, "version": projector.version}).fetchone()
            if state is None:
                raise DiffRefusedError(f"{name} v{projector.version} is not registered: build it first with"
                                       f" `bo rebuild {name} --version {projector.version}`")
            setattr(result, f"status_{side}", state["status"])
            setattr(result, f"checkpoint_{side}", int(state["checkpoint"]))
        cols_a, cols_b = _columns(cur, pa), _columns(cur, pb)
        shared = [c for c in cols_a if c in cols_b and c not in NOT_COMPARED and c != pa.key_column]
        result.only_in_a = [c for c in cols_a if c not in cols_b]
        result.only_in_b = [c for c in cols_b if c not in cols_a]
        key, ta, tb = sql.Identifier(pa.key_column), pa.table(), pb.table()
        distinct = {c: sql.SQL("a.{c} IS DISTINCT FROM b.{c}").format(c=sql.Identifier(c)) for c in shared}
        counts = cur.execute(COUNTS.format(
            key=key, a=ta, b=tb,
            any_changed=sql.SQL(" OR ").join(distinct.values()) if distinct else sql.SQL("false"),
            per_column=sql.SQL(", ").join(
                sql.SQL("count(*) FILTER (WHERE a.{key} IS NOT NULL AND b.{key} IS NOT NULL AND {d}) AS {alias}")
                .format(key=key, d=d, alias=sql.Identifier(f"col_{c}")) for c, d in distinct.items()
            ) if distinct else sql.SQL("0 AS nothing"),
        )).fetchone()
        assert counts is not None
        result.added, result.removed, result.changed = int(counts["added"]), int(counts["removed"]), \
            int(counts["changed"])
        for c in shared:
            n = int(counts[f"col_{c}"])
            if n:
                result.changed_by_column[c] = n
                result.samples[c] = cur.execute(SAMPLES.format(key=key, a=ta, b=tb, column=sql.Identifier(c)),
                                                {"limit": samples}).fetchall()
        result.added_samples = [r["key"] for r in cur.execute(ONLY_IN.format(key=key, x=tb, y=ta),
                                                              {"limit": samples}).fetchall()]
        result.removed_samples = [r["key"] for r in cur.execute(ONLY_IN.format(key=key, x=ta, y=tb),
                                                                {"limit": samples}).fetchall()]
        for projector, attr in ((pa, "rows_a"), (pb, "rows_b")):
            row = cur.execute(sql.SQL("SELECT count(*) AS n FROM {t}").format(t=projector.table())).fetchone()
            setattr(result, attr, int(row["n"]) if row else 0)
    return result


def _columns(cur: DictCursor, projector: Projector) -> list[str]:
    return [r["column_name"] for r in cur.execute(SELECT_COLUMNS, {"table": projector.table_name()}).fetchall()]
