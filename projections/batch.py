"""One batch of log rows, judged once for every projector version that reads it (set-based).

`prepare(cur, rows)` fills the transaction's temporary table `bo_batch` with one row per
log row of the batch (a position range, or a list of positions for a replay):

1. The contract's verdict. Ordinary rows are accepted and their fields extracted in SQL
   (`contract_sql.accepts`/`extract`, a conservative fast path); every other row goes
   through `contract.classify` in Python, which stays the authority on rejections and
   their details. Either way the values are the pydantic model's.
2. The first valid occurrence of each event_id (SPEC 2: event ids are unique across all
   topics). A valid row whose event_id was first logged, valid, at an earlier position is
   a DUPLICATE when the payloads are equal and a DUPLICATE_EVENT_ID_CONFLICT otherwise.
   Earlier occurrences are looked up in the log itself, whatever their topic or type.
   "Equal" is `contract.payload_digest` (canonical JSON, numbers exactly as sent), computed
   in Python for the few rows whose event_id repeats, as the Python engine does.

The projectors then read `bo_batch`: what they take, which rows to dead-letter, which
are first-seen valid events to apply (see `Projector.apply_batch`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import sql

from projections import verdicts
from projections.contract import (
    LedgerEntryPayload,
    Rejection,
    ValidEvent,
    classify,
    parse_json,
    payload_digest,
)
from projections.contract_sql import EXTRACTED_COLUMNS, accepts, extract
from projections.projector import DictCursor

VALID, REJECTED, UNDECIDED = "VALID", "REJECTED", "UNDECIDED"
FIRST, DUPLICATE, CONFLICT = "FIRST", "DUPLICATE", "CONFLICT"

# The batch, one row per log row: the verdict, the extracted fields, and (valid rows) whether
# it is the first valid occurrence of its event_id.
# Made once per connection and emptied at each commit (not created per transaction), so
# that the statements over it keep their prepared plans.
CREATE_BATCH = """
    CREATE TEMPORARY TABLE IF NOT EXISTS bo_batch (
        position        bigint PRIMARY KEY,
        ingested_at     timestamptz NOT NULL,
        event_type      text,
        topic           text,
        verdict         text NOT NULL,
        reason          text,
        detail          text,
        occurrence      text,
        event_id        text,
        entity_id       text,
        wallet_id       text,
        entry_type      text,
        amount          numeric,
        currency        text,
        status          text,
        related_id      text,
        related_type    text,
        merchant_id     text,
        payment_method  text,
        payer_name      text,
        payer_email     text,
        payer_phone     text,
        account_number  text,
        created_at      timestamptz,
        updated_at      timestamptz,
        version         bigint,
        fresh           boolean NOT NULL DEFAULT true  -- judged by this batch, not loaded from bo.event_verdicts
    ) ON COMMIT DELETE ROWS
"""

# The model's values; the payload digest is computed only for repeated event ids (below).
BATCH_COLUMNS = tuple(c for c in EXTRACTED_COLUMNS if c != "payload_digest")
_COLUMNS = sql.SQL(", ").join(sql.Identifier(c) for c in BATCH_COLUMNS)

# Rows the SQL fast path accepts, with the model's values; {rows} is the batch's row predicate,
# {unjudged} leaves out the rows whose verdicts were loaded (projections/verdicts.py).
INSERT_ACCEPTED = sql.SQL("""
    INSERT INTO bo_batch (position, ingested_at, event_type, topic, verdict, occurrence, {columns})
    SELECT l.position, l.ingested_at, l.event_type, l.topic, 'VALID', 'FIRST', {ledger}
      FROM bo.event_log l WHERE {rows} {unjudged} AND l.event_type = 'LedgerEntryUpserted' AND {accepts_ledger}
    UNION ALL
    SELECT l.position, l.ingested_at, l.event_type, l.topic, 'VALID', 'FIRST', {order}
      FROM bo.event_log l WHERE {rows} {unjudged} AND l.event_type = 'PaymentOrderUpserted' AND {accepts_order}
""")
UNJUDGED = sql.SQL("AND NOT EXISTS (SELECT 1 FROM bo_batch x WHERE x.position = l.position)")
_FAST_PATH = {
    "columns": _COLUMNS,
    "ledger": extract("LedgerEntryUpserted", names=BATCH_COLUMNS), "accepts_ledger": accepts("LedgerEntryUpserted"),
    "order": extract("PaymentOrderUpserted", names=BATCH_COLUMNS), "accepts_order": accepts("PaymentOrderUpserted"),
}

INSERT_UNDECIDED = sql.SQL("""
    INSERT INTO bo_batch (position, ingested_at, event_type, topic, verdict)
    SELECT l.position, l.ingested_at, l.event_type, l.topic, 'UNDECIDED'
      FROM bo.event_log l
     WHERE {rows} AND NOT EXISTS (SELECT 1 FROM bo_batch b WHERE b.position = l.position)
""")

SELECT_UNDECIDED = """
    SELECT b.position, l.raw_value, l.oversized, l.value_size
      FROM bo_batch b JOIN bo.event_log l USING (position)
     WHERE b.verdict = 'UNDECIDED'
"""

DECIDE_VALID = sql.SQL("""
    UPDATE bo_batch SET verdict = 'VALID', occurrence = 'FIRST', {assignments}
     WHERE position = %(position)s
""").format(assignments=sql.SQL(", ").join(
    sql.SQL("{c} = {p}").format(c=sql.Identifier(c), p=sql.Placeholder(c)) for c in BATCH_COLUMNS))

DECIDE_REJECTED = """
    UPDATE bo_batch SET verdict = 'REJECTED', reason = %(reason)s, detail = %(detail)s, event_id = %(event_id)s
     WHERE position = %(position)s
"""

# Valid rows whose event_id appears more than once up to the batch's last row: in the batch,
# or earlier in the log (outside the batch). Usually only true duplicates and replays. Only
# event ids with a row judged by this batch: a loaded verdict's occurrence is already final.
SELECT_REPEATED = """
    WITH valid AS (
        SELECT position, event_id, fresh, count(*) OVER (PARTITION BY event_id) AS in_batch,
               bool_or(fresh) OVER (PARTITION BY event_id) AS judged_now
          FROM bo_batch WHERE verdict = 'VALID'
    )
    SELECT v.position, v.event_id, v.fresh, l.raw_value
      FROM valid v JOIN bo.event_log l USING (position)
     WHERE v.judged_now
       AND (v.in_batch > 1
            OR EXISTS (SELECT 1 FROM bo.event_log l
                        WHERE l.event_id = v.event_id AND l.position < v.position
                          AND NOT EXISTS (SELECT 1 FROM bo_batch x WHERE x.position = l.position)))
"""

# Earlier log rows (outside the batch) carrying these event ids, with the fast-path verdict.
# Read by the event_id index only, whatever the statistics say (decisions §63): on a log never
# analysed yet (just after a bulk load or a backfill), PostgreSQL's default estimate for
# `= ANY` of a few hundred ids is most of the table, and it chose to read the whole log by
# position instead (150 ms against 16 ms at 120,000 rows, and growing with the log). So the
# statement has no position condition (the caller drops rows after the batch) and runs with
# sequential scans disabled for its own duration.
SELECT_EARLIER = sql.SQL("""
    SELECT l.position, l.event_id, l.event_type, l.raw_value, l.oversized, l.value_size,
           CASE l.event_type WHEN 'LedgerEntryUpserted' THEN {accepts_ledger}
                             WHEN 'PaymentOrderUpserted' THEN {accepts_order} ELSE false END AS accepted
      FROM bo.event_log l
     WHERE l.event_id = ANY(%(event_ids)s)
       AND NOT EXISTS (SELECT 1 FROM bo_batch x WHERE x.position = l.position)
""").format(accepts_ledger=accepts("LedgerEntryUpserted"), accepts_order=accepts("PaymentOrderUpserted"))
BY_INDEX_ONLY = "SELECT current_setting('enable_seqscan') AS was, set_config('enable_seqscan', 'off', true)"
BY_ANY_PLAN = "SELECT set_config('enable_seqscan', %(was)s, true)"

MARK_OCCURRENCE = """
    UPDATE bo_batch SET occurrence = %(occurrence)s, detail = %(detail)s WHERE position = %(position)s
"""


@dataclass(frozen=True, slots=True)
class Rows:
    """The log rows of a batch: a position range `(after, up_to]`, or explicit positions."""

    after: int | None = None
    up_to: int | None = None
    positions: Sequence[int] | None = None

    def count(self) -> int:
        """How many log rows the batch covers (positions are dense: every one up to the head exists)."""
        if self.positions is not None:
            return len(set(self.positions))
        assert self.after is not None and self.up_to is not None
        return max(0, self.up_to - self.after)

    def predicate(self) -> tuple[sql.Composable, dict[str, Any]]:
        if self.positions is not None:
            return sql.SQL("l.position = ANY(%(positions)s)"), {"positions": list(self.positions)}
        return sql.SQL("l.position > %(after)s AND l.position <= %(up_to)s"), {
            "after": self.after, "up_to": self.up_to}


def prepare(cur: DictCursor, rows: Rows) -> int:
    """Fill `bo_batch` for `rows`; answer how many log rows it holds.

    Verdicts this code already reached are loaded (projections/verdicts.py); only the other
    rows are judged, and their verdicts kept.
    """
    predicate, params = rows.predicate()
    cur.execute(CREATE_BATCH)
    cur.execute("DELETE FROM bo_batch")  # empty unless a batch was already prepared in this transaction
    loaded = cur.execute(verdicts.load(predicate), {**params, "contract": verdicts.CONTRACT}).rowcount
    if loaded < rows.count():
        _judge(cur, predicate, params, unjudged=UNJUDGED if loaded else sql.SQL(""))
        cur.execute(verdicts.KEEP, {"contract": verdicts.CONTRACT})
    count = cur.execute("SELECT count(*) AS n FROM bo_batch").fetchone()
    return int(count["n"]) if count else 0


def rejudge(cur: DictCursor, rows: Rows) -> None:
    """Fill `bo_batch` for `rows` by judging every row from the log, loading and keeping nothing:
    what the kept verdicts must equal (`bo log verify`, projections/verdicts.py `verify`)."""
    predicate, params = rows.predicate()
    cur.execute(CREATE_BATCH)
    cur.execute("DELETE FROM bo_batch")
    _judge(cur, predicate, params, unjudged=sql.SQL(""))


def _judge(cur: DictCursor, predicate: sql.Composable, params: dict[str, Any], *, unjudged: sql.Composable) -> None:
    """Judge the batch's rows not in `bo_batch` yet: the SQL fast path, then Python, then occurrences."""
    cur.execute(INSERT_ACCEPTED.format(rows=predicate, unjudged=unjudged, **_FAST_PATH), params)
    cur.execute(INSERT_UNDECIDED.format(rows=predicate), params)
    _decide_in_python(cur)
    _judge_occurrences(cur)


def judge_row(row: Mapping[str, Any]) -> ValidEvent | Rejection:
    """The contract's verdict on one log row (the Python path)."""
    if row["oversized"]:
        return Rejection("INVALID_JSON", f"(root): the value ({row['value_size']} bytes) was over the size limit;"
                                         " the log keeps its size and SHA-256, not its content")
    return classify(row["raw_value"])


def _decide_in_python(cur: DictCursor) -> None:
    undecided = cur.execute(SELECT_UNDECIDED).fetchall()
    valid, rejected = [], []
    for row in undecided:
        verdict = judge_row(row)
        if isinstance(verdict, ValidEvent):
            valid.append({"position": row["position"], **extracted(verdict)})
        else:
            rejected.append({"position": row["position"], "reason": verdict.reason, "detail": verdict.detail,
                             "event_id": verdict.event_id})
    if valid:
        cur.executemany(DECIDE_VALID, valid)
    if rejected:
        cur.executemany(DECIDE_REJECTED, rejected)


def extracted(event: ValidEvent) -> dict[str, Any]:
    """The columns of `EXTRACTED_COLUMNS` from a validated event (as `contract_sql.extract` gives them)."""
    p = event.payload
    fields = p.model_dump()
    row = {c: fields.get(c) for c in BATCH_COLUMNS if c not in ("event_id", "entity_id")}
    row["event_id"] = event.envelope.event_id
    row["entity_id"] = p.tx_id if isinstance(p, LedgerEntryPayload) else p.order_id
    return row


def _judge_occurrences(cur: DictCursor) -> None:
    """Mark valid rows that are not the first valid occurrence of their event_id."""
    repeated = cur.execute(SELECT_REPEATED).fetchall()
    if not repeated:
        return
    # event_id → [(position, digest)] of every valid occurrence up to the batch's last row.
    occurrences: dict[str, list[tuple[int, bytes]]] = {}
    for row in repeated:
        occurrences.setdefault(row["event_id"], []).append((int(row["position"]), _digest_of(row["raw_value"])))
    up_to = max(int(r["position"]) for r in repeated)
    setting = cur.execute(BY_INDEX_ONLY).fetchone()
    earlier = cur.execute(SELECT_EARLIER, {"event_ids": sorted(occurrences)}).fetchall()
    cur.execute(BY_ANY_PLAN, {"was": setting["was"] if setting else "on"})
    for row in earlier:
        if int(row["position"]) > up_to:
            continue  # appended after the batch
        digest = _earlier_digest(row)
        if digest is not None:
            occurrences[row["event_id"]].append((int(row["position"]), digest))
    marks = []
    in_batch = {int(r["position"]) for r in repeated if r["fresh"]}  # loaded verdicts are final
    for event_id, seen in occurrences.items():
        first_position, first_digest = min(seen)
        for position, digest in seen:
            if position == first_position or position not in in_batch:
                continue
            if digest == first_digest:
                marks.append({"position": position, "occurrence": DUPLICATE, "detail": None})
            else:
                marks.append({"position": position, "occurrence": CONFLICT,
                              "detail": f"event_id: {event_id!r} was first logged at position {first_position}"
                                        " with a different payload"})
    if marks:
        cur.executemany(MARK_OCCURRENCE, marks)


def _earlier_digest(row: Mapping[str, Any]) -> bytes | None:
    """The payload digest of an earlier row carrying the event_id, or None when it is not valid."""
    if row["accepted"]:
        return _digest_of(row["raw_value"])
    verdict = judge_row(row)
    if not isinstance(verdict, ValidEvent) or verdict.envelope.event_id != row["event_id"]:
        return None
    return verdict.payload_sha256


def _digest_of(raw_value: bytes) -> bytes:
    """`contract.payload_digest` of a valid row's payload: the one notion of "same payload" both
    engines use (exact numbers as sent: `10` and `1e1` differ), computed only for repeated ids."""
    return payload_digest(parse_json(raw_value)["payload"])
