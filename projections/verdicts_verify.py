"""`bo log verify` over `bo.event_verdicts`: every kept verdict re-derived from the log and compared.

A kept verdict is read instead of judging (projections/verdicts.py), so a verdict edited in
the table would reach every rebuild. Here the whole log is judged again, batch by batch, by
the code now running (`batch.rejudge`: the same SQL fast path and Python contract, keeping
nothing), and each kept verdict of this code (`verdicts.CONTRACT`) must equal it, column by
column (amounts compared as text, so that a changed scale shows). `bo log verify` checks the
log's `document` and readable columns against the raw bytes first, so what is judged here
is what the hash chain vouches for.

Also reported:
- a verdict missing for a position that a projector has read past (a projection batch keeps
  the verdict of every row in its range): deleted. Rows of a log projected before verdicts
  were kept are excused up to `bo.verdicts_kept_from` (migration 0009);
- a verdict for a position that is not in the log.
Verdicts reached by other contract code (an older or newer bo) cannot be re-derived by
this code: they are counted, not judged. The running code never reads them either.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from eventstore import log
from projections import batch, verdicts
from projections.tracking import highest_checkpoint

# At most this many problems are listed; the count says how many there were.
MAX_LISTED: Final = 10


# Each kept verdict of the batch's range against the one judged again (bo_batch): the first
# column that differs, or what is wrong with the row as a whole.
COMPARE = sql.SQL("""
    SELECT coalesce(b.position, v.position) AS position, v.contract = %(contract)s AS ours,
           CASE WHEN v.position IS NULL THEN 'missing'
                WHEN b.position IS NULL THEN 'not in the log'
                WHEN v.contract <> %(contract)s THEN NULL
                {differs}
           END AS problem
      FROM bo_batch b
      FULL JOIN (SELECT * FROM bo.event_verdicts WHERE position > %(after)s AND position <= %(up_to)s) v
        ON v.position = b.position
""").format(differs=sql.SQL(" ").join(
    sql.SQL("WHEN b.{c}{cast} IS DISTINCT FROM v.{c}{cast} THEN {name}").format(
        c=sql.Identifier(c), cast=sql.SQL("::text" if c == "amount" else ""), name=sql.Literal(c))
    for c in verdicts.COLUMNS if c != "position"))

# Below this, a log projected before verdicts were kept (migration 0009) may lack them.
SELECT_KEPT_FROM = "SELECT coalesce(max(position), 0) AS position FROM bo.verdicts_kept_from"
SELECT_BEYOND_HEAD = "SELECT position FROM bo.event_verdicts WHERE position > %(head)s ORDER BY position LIMIT 10"


@dataclass
class VerdictReport:
    judged: int = 0  # log rows judged again
    checked: int = 0  # kept verdicts of this code compared
    other_code: int = 0  # kept verdicts of other contract code, not re-derivable here
    problems: list[str] = field(default_factory=list)
    found: int = 0
    first_bad: int | None = None

    @property
    def ok(self) -> bool:
        return self.found == 0

    def add(self, position: int, problem: str) -> None:
        self.found += 1
        if self.first_bad is None or position < self.first_bad:
            self.first_bad = position
        if len(self.problems) < MAX_LISTED:
            self.problems.append(f"position {position}: {problem}")


def verify_verdicts(conn: psycopg.Connection[Any], *, batch_size: int = 20_000,
                    progress: Callable[[int], None] | None = None) -> VerdictReport:
    """Judge the whole log again and compare every kept verdict (see the module's docstring)."""
    report = VerdictReport()
    with conn.cursor(row_factory=dict_row) as cur:
        read_to, head = highest_checkpoint(cur), log.head(conn)
        kept_from_row = cur.execute(SELECT_KEPT_FROM).fetchone()
        kept_from = int(kept_from_row["position"]) if kept_from_row else 0
        for after in range(0, head, batch_size):
            up_to = min(head, after + batch_size)
            with conn.transaction():
                batch.rejudge(cur, batch.Rows(after=after, up_to=up_to))
                compared = cur.execute(COMPARE, {"contract": verdicts.CONTRACT, "after": after,
                                                 "up_to": up_to}).fetchall()
            _tally(report, compared, kept_from, read_to)
            report.judged += up_to - after
            if progress:
                progress(up_to - after)
        for row in cur.execute(SELECT_BEYOND_HEAD, {"head": head}).fetchall():
            report.add(int(row["position"]), "a verdict is kept for a position that is not in the log")
    return report


def _tally(report: VerdictReport, compared: list[dict[str, Any]], kept_from: int, read_to: int) -> None:
    for row in sorted(compared, key=lambda r: int(r["position"])):
        position, problem = int(row["position"]), row["problem"]
        if problem == "missing":
            if kept_from < position <= read_to:
                report.add(position, "no verdict is kept, though projectors have read past it (deleted?)")
            continue
        if problem == "not in the log":
            report.add(position, "a verdict is kept for a position that is not in the log")
            continue
        if not row["ours"]:
            report.other_code += 1
            continue
        report.checked += 1
        if problem is not None:
            report.add(position, f"the kept verdict's {problem} is not what judging the log row gives")
