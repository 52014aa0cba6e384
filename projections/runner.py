"""The projector runner: read after checkpoint → judge → apply → save checkpoint, one transaction a batch.

Per batch, in one transaction:
1. take the advisory lock of each projector version of the batch (one runner at a time per
   version) and read their checkpoints;
2. take the next log rows after the checkpoint, in position order (positions are dense and
   become visible in order, see eventstore/log.py, so nothing is ever skipped);
3. judge them: the contract's verdict (invalid rows become dead letters), and repeated
   event_ids (DUPLICATE with the same payload, DUPLICATE_EVENT_ID_CONFLICT otherwise);
4. let each projector apply the first-seen valid events it handles (no fate is stored: the
   history derives each row's fate for one entity on read, projections/fates.py);
5. record the checkpoints with eventsourcing's tracking recorder, and commit.
A crash anywhere rolls the whole batch back; the next run starts from the same checkpoint.

Two engines do steps 3–4 (see docs/decisions.md §34): the SQL engine (projections/batch.py
and each projector's `apply_batch`), which runs versions at the same checkpoint as one
cohort, and the Python engine (each projector's `apply` over the pure cores), the
executable specification the tests hold it to.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg
from eventsourcing.postgres import PostgresDatastore
from opentelemetry import trace
from opentelemetry.trace import Span
from psycopg import sql as psql

from eventstore import db
from eventstore.errors import DatabaseUnavailableError
from eventstore.health import Health
from projections import batch, sql
from projections import metrics as project_metrics
from projections.contract import Rejection, ValidEvent
from projections.first_seen import first_seen
from projections.metrics import ProjectorMetrics
from projections.projector import DictCursor, LoggedEvent, Projector
from projections.tracking import CheckpointStore
from telemetry.tracing import links

logger = logging.getLogger(__name__)
TRACER = trace.get_tracer(__name__)

DUPLICATE = "DUPLICATE"
DEAD_LETTERED = "DEAD_LETTERED"
KNOWN_EVENT_TYPES = frozenset({"LedgerEntryUpserted", "PaymentOrderUpserted"})
# The set-based engine (projections/batch.py and each projector's apply_batch) projects; the
# Python engine (each projector's apply over the pure cores) is the executable specification
# that tests hold it equal to.
SQL_ENGINE, PYTHON_ENGINE = "sql", "python"


def sql_literal(values: Sequence[str]) -> psql.Composable:
    return psql.SQL("{}::text[]").format(psql.Literal(list(values)))


@dataclass
class BatchOutcome:
    read: int = 0
    fates: dict[str, int] = field(default_factory=dict)
    checkpoint: int = 0


class ProjectionRunner:
    """Runs projector versions over the log. `topic_of` maps an event type to its topic."""

    def __init__(
        self,
        datastore: PostgresDatastore,
        projectors: Sequence[Projector],
        topic_of: Mapping[str, str],
        *,
        batch_size: int = 2000,
        health: Health | None = None,
        engine: str = SQL_ENGINE,
        metrics: ProjectorMetrics | None = None,
        lanes: int = 1,
    ) -> None:
        if engine not in (SQL_ENGINE, PYTHON_ENGINE):
            raise ValueError(f"unknown projection engine {engine!r}")
        self.engine = engine
        self.health = health or Health("project")
        self.metrics = metrics or ProjectorMetrics()
        self.datastore = datastore
        self.checkpoints = CheckpointStore(datastore)
        self.projectors = list(projectors)
        self.batch_size = batch_size
        self.lanes = lanes
        self._verdicts: OrderedDict[int, ValidEvent | Rejection] = OrderedDict()
        self._topic_of = dict(topic_of)
        self._topics: dict[str, frozenset[str]] = {}
        self._judge: JudgeAhead | None = None
        self._set_projectors(projectors)

    def _set_projectors(self, projectors: Sequence[Projector]) -> None:
        self.projectors = list(projectors)
        self._topics = {
            p.tracking_name(): frozenset(self._topic_of[t] for t in p.handles if t in self._topic_of)
            for p in self.projectors
        }

    def follow_registry(self) -> None:
        """Run the versions `bo.projectors` says run now (a rebuild or a retirement since start)."""
        from projections import registry  # the registry declares every projector: imported late

        with self.datastore.transaction(commit=False) as cur:
            running = registry.running(cur)
        if [p.tracking_name() for p in running] != [p.tracking_name() for p in self.projectors]:
            logger.info("projector versions changed", extra={"versions": [p.tracking_name() for p in running]})
            self._set_projectors(running)

    def run_batch(self, projector: Projector) -> BatchOutcome:
        if self.engine == SQL_ENGINE:
            return self._run_cohort([projector])[projector.tracking_name()]
        with self.datastore.transaction(commit=True) as cur:
            cur.execute(sql.LOCK_PROJECTOR, {"name": projector.tracking_name()})
            checkpoint = self.checkpoints.checkpoint_in(cur, projector.tracking_name())
            rows = cur.execute(
                sql.SELECT_LOG_AFTER, {"after": checkpoint, "limit": self.batch_size}
            ).fetchall()
            if not rows:
                return BatchOutcome(checkpoint=checkpoint)
            fates = self._project(cur, projector, rows)
            last = int(rows[-1]["position"])
            self.checkpoints.record(cur, projector.tracking_name(), last)
        counts: dict[str, int] = {}
        for fate in fates.values():
            counts[fate] = counts.get(fate, 0) + 1
        return BatchOutcome(read=len(rows), fates=counts, checkpoint=last)

    def _run_cohort(self, cohort: Sequence[Projector]) -> dict[str, BatchOutcome]:
        """One batch for versions at the same checkpoint, judged once (projections/batch.py).

        Every version of the cohort applies the same log rows and records the same checkpoint
        in one transaction; a version found at another checkpoint (another runner moved it)
        sits this batch out.
        """
        names = sorted(p.tracking_name() for p in cohort)
        started = time.perf_counter()
        applied: list[Projector] = []
        dead_letters: dict[tuple[str, int], dict[str, int]] = {}
        with TRACER.start_as_current_span("project batch") as span, \
                self.datastore.transaction(commit=True) as cur:
            for name in names:
                cur.execute(sql.LOCK_PROJECTOR, {"name": name})
            checkpoints = {name: self.checkpoints.checkpoint_in(cur, name) for name in names}
            after = min(checkpoints.values())
            outcomes = {name: BatchOutcome(checkpoint=checkpoint) for name, checkpoint in checkpoints.items()}
            head_row = cur.execute(sql.SELECT_HEAD).fetchone()
            up_to = min(after + self.batch_size, int(head_row["head"]) if head_row else 0)
            if self._judge is not None:
                up_to = self._judge.judged(after, up_to)
            if up_to <= after:
                return outcomes
            if span.is_recording():
                _trace_batch(cur, span, names, after, up_to)
            read = batch.prepare(cur, batch.Rows(after=after, up_to=up_to))
            for projector in cohort:
                if checkpoints[projector.tracking_name()] == after:
                    dead_letters[(projector.name, projector.version)] = self._apply_prepared(cur, projector)
                    self.checkpoints.record(cur, projector.tracking_name(), up_to)
                    outcomes[projector.tracking_name()] = BatchOutcome(read=read, checkpoint=up_to)
                    applied.append(projector)
            times = cur.execute(project_metrics.SELECT_BATCH_TIMES, {"after": after, "up_to": up_to}).fetchall()
        self.metrics.batch_committed([(p.name, p.version) for p in applied], read, time.perf_counter() - started,
                                     times, datetime.now(UTC), dead_letters)
        return outcomes

    def _apply_prepared(self, cur: DictCursor, projector: Projector) -> dict[str, int]:
        """Dead letters of what `projector` takes from `bo_batch`, then its apply; answers the
        dead letters written, by reason."""
        takes = sql.TAKES.format(
            handles=sql_literal(sorted(projector.handles)), known=sql_literal(sorted(KNOWN_EVENT_TYPES)),
            topics=sql_literal(sorted(self._topics[projector.tracking_name()])))
        reasons: dict[str, int] = {}
        for row in cur.execute(sql.INSERT_BATCH_DEAD_LETTERS.format(takes=takes),
                               {"projector": projector.name, "version": projector.version}).fetchall():
            reasons[row["reason"]] = reasons.get(row["reason"], 0) + 1
        projector.apply_batch(cur)
        return reasons

    def replay(self, projector: Projector, positions: Sequence[int]) -> int:
        """Re-run the current code on `positions` (dead letters) and everything they take part in.

        The scope (the projector's `replay_scope`: the entities of the events that now
        apply, with their whole history up to the checkpoint) is forgotten and projected
        again in position order, in one transaction under the version's lock, so the read
        tables end as a build from position 0 would leave them. Every open dead letter of the
        scope that now applies is resolved in the same transaction; answers how many.
        """
        with self.datastore.transaction(commit=True) as cur:
            cur.execute(sql.LOCK_PROJECTOR, {"name": projector.tracking_name()})
            checkpoint = self.checkpoints.checkpoint_in(cur, projector.tracking_name())
            asked = sorted(p for p in set(positions) if p <= checkpoint)
            now_valid = self._valid_events(projector, cur.execute(sql.SELECT_LOG_AT, {"positions": asked}).fetchall())
            scope = sorted(set(asked) | set(projector.replay_scope(cur, now_valid, checkpoint)))
            rows = cur.execute(sql.SELECT_LOG_AT, {"positions": scope}).fetchall()
            projector.forget(cur, self._valid_events(projector, rows))
            if self.engine == SQL_ENGINE:
                batch.prepare(cur, batch.Rows(positions=scope))
                self._apply_prepared(cur, projector)
                taken = [int(r["position"]) for r in cur.execute(sql.SELECT_BATCH_TAKEN, {"positions": scope})]
            else:
                fates = self._project(cur, projector, rows)
                taken = [position for position, fate in fates.items() if fate != DEAD_LETTERED]
            resolved = cur.execute(sql.RESOLVE_TAKEN_DEAD_LETTERS, {
                "projector": projector.name, "version": projector.version, "positions": taken})
            return resolved.rowcount

    def _valid_events(self, projector: Projector, rows: Sequence[Mapping[str, Any]]) -> list[LoggedEvent]:
        events = []
        for row in rows:
            if self._takes(projector, row):
                verdict = self._verdict(row)
                if isinstance(verdict, ValidEvent) and verdict.envelope.event_type in projector.handles:
                    events.append(LoggedEvent(int(row["position"]), row["ingested_at"], verdict))
        return events

    def catch_up(self, stop: threading.Event | None = None,
                 on_batch: Callable[[Mapping[str, BatchOutcome]], None] | None = None) -> int:
        """Run every projector until each has read the whole log as it is now; answer rows read.

        The SQL engine runs versions at the same checkpoint as one cohort (each log row
        judged once for all of them), in up to `lanes` lanes at once (`plan_lanes`: one
        transaction, one connection and one PostgreSQL backend each); the Python engine runs
        them a batch each in turn. With `stop`, each lane ends after its batch in flight once
        it is set; `on_batch` gets each committed batch's outcomes by version, from the
        lane's thread.
        """
        if self.engine == SQL_ENGINE:
            return self._catch_up_in_cohorts(stop, on_batch)
        total = 0
        behind = list(self.projectors)
        while behind:
            outcomes = [(p, self.run_batch(p)) for p in behind]
            total += sum(outcome.read for _, outcome in outcomes)
            behind = [p for p, outcome in outcomes if outcome.read == self.batch_size]
        return total

    def _catch_up_in_cohorts(self, stop: threading.Event | None = None,
                             on_batch: Callable[[Mapping[str, BatchOutcome]], None] | None = None) -> int:
        lanes = plan_lanes(self.projectors, self.lanes)
        failed = threading.Event()  # set by the first lane that fails: the others end after their batch

        def halted() -> bool:
            return failed.is_set() or (stop is not None and stop.is_set())

        if len(lanes) <= 1:
            return self._catch_up_lane(self.projectors, halted, on_batch)
        with ThreadPoolExecutor(len(lanes), thread_name_prefix="project-lane") as pool:
            futures = [pool.submit(self._catch_up_lane, lane, halted, on_batch) for lane in lanes]
            wait(futures, return_when=FIRST_EXCEPTION)
            if any(f.done() and f.exception() is not None for f in futures):
                failed.set()
        errors = [error for error in (f.exception() for f in futures) if error is not None]
        if errors:
            raise _gravest(errors)
        return sum(f.result() for f in futures)

    def _catch_up_lane(self, projectors: Sequence[Projector], halted: Callable[[], bool],
                       on_batch: Callable[[Mapping[str, BatchOutcome]], None] | None = None) -> int:
        """Batches of `projectors` until they have read the log as it is now, or until `halted()`."""
        total = 0
        while not halted():
            with self.datastore.transaction(commit=False) as cur:
                checkpoints = {p.tracking_name(): self.checkpoints.checkpoint_in(cur, p.tracking_name())
                               for p in projectors}
            cohorts: dict[int, list[Projector]] = {}
            for projector in projectors:
                cohorts.setdefault(checkpoints[projector.tracking_name()], []).append(projector)
            full = False
            for _, cohort in sorted(cohorts.items()):
                outcomes = self._run_cohort(cohort)
                if on_batch is not None:
                    on_batch(outcomes)
                total += sum(o.read for o in outcomes.values())
                full = full or any(o.read == self.batch_size for o in outcomes.values())
            if not full:
                return total
        return total

    def run(self, stop: threading.Event, listen_url: str, *, idle_wait_s: float = 1.0,
            follow_registry: bool = False, registry_every_s: float = 2.0, judge_ahead: bool = True) -> None:
        """Follow the log until `stop` is set: catch up, then wait for NOTIFY (or poll).

        With `judge_ahead` (the SQL engine), a `JudgeAhead` thread judges the log ahead of
        the projectors on a connection of its own, and each batch applies what it judged:
        PostgreSQL judges one range on one core while it applies the previous one on the other.

        With `follow_registry`, the set of versions is re-read every `registry_every_s`, so
        a version registered by `bo rebuild` is kept caught up once built, and a retired
        one is dropped, without a restart.

        Transient database errors are waited out (eventstore.db.with_retries); a permanent
        one raises `PermanentDatabaseError`. Any other failure propagates as it is: a defect
        in a batch is not bad input (bad input is dead-lettered), and retrying cannot help.
        Each step first (re)connects the LISTEN connection directly, not through the pool: a
        login refused after start-up (a rotated password) is then judged as what it is, not
        as the pool's timeout.
        """
        follower = _Follower(listen_url)
        registry_read_at = time.monotonic()
        judge = None
        if self.engine == SQL_ENGINE and judge_ahead:
            judge = JudgeAhead(listen_url, self._slowest_checkpoint, batch_size=self.batch_size)
            judge.start()
            self._judge = judge

        def step() -> None:
            nonlocal registry_read_at
            follower.listen()  # before catching up: a row appended meanwhile still wakes us
            if follow_registry and time.monotonic() - registry_read_at >= registry_every_s:
                self.follow_registry()
                registry_read_at = time.monotonic()
            if self.catch_up() == 0:
                follower.wait(idle_wait_s)
            self.health.progressed()

        try:
            while not stop.is_set():
                try:
                    db.with_retries(step, what="project", stop=stop, health=self.health,
                                    on_transient=follower.close)
                except DatabaseUnavailableError:
                    if stop.is_set():
                        break
                    raise
        finally:
            follower.close()
            self._judge = None
            if judge is not None:
                judge.close()

    def _slowest_checkpoint(self) -> int:
        with self.datastore.transaction(commit=False) as cur:
            return min((self.checkpoints.checkpoint_in(cur, p.tracking_name()) for p in self.projectors), default=0)

    def wait_for(self, position: int, timeout: float = 30.0) -> None:
        """Block until every projector has applied the log up to `position`."""
        for projector in self.projectors:
            self.checkpoints.wait(projector.tracking_name(), position, timeout=timeout)

    def _verdict(self, row: Mapping[str, Any]) -> ValidEvent | Rejection:
        """The contract's verdict on a log row, judged once for all the versions this runner runs.

        Log rows never change, so a verdict stays true; the cache holds the last few batches
        (the versions read the same ranges one after another).
        """
        position = int(row["position"])
        verdict = self._verdicts.get(position)
        if verdict is None:
            verdict = batch.judge_row(row)
            self._verdicts[position] = verdict
            if len(self._verdicts) > 4 * self.batch_size:
                self._verdicts.popitem(last=False)
        return verdict

    def _takes(self, projector: Projector, row: Mapping[str, Any]) -> bool:
        event_type = row["event_type"]
        if event_type in ("LedgerEntryUpserted", "PaymentOrderUpserted"):
            return bool(event_type in projector.handles)
        # Unreadable or unknown event types: the projectors of the topic it came on,
        # or every projector for rows without a topic (backfill).
        return row["topic"] is None or row["topic"] in self._topics[projector.tracking_name()]

    def _project(self, cur: DictCursor, projector: Projector, rows: Sequence[Mapping[str, Any]]
                 ) -> dict[int, str]:
        verdicts: list[tuple[Mapping[str, Any], ValidEvent | Rejection]] = [
            (row, self._verdict(row)) for row in rows if self._takes(projector, row)
        ]
        fates: dict[int, str] = {}
        rejections: dict[int, Rejection] = {}
        fresh = first_seen(cur, verdicts, fates, rejections, self._verdict)
        fates.update(projector.apply(cur, fresh))
        for position in rejections:
            fates[position] = DEAD_LETTERED
        self._record(cur, projector, fates, rejections)
        return fates

    def _record(
        self,
        cur: DictCursor,
        projector: Projector,
        fates: Mapping[int, str],
        rejections: Mapping[int, Rejection],
    ) -> None:
        if rejections:
            cur.executemany(sql.INSERT_DEAD_LETTER, [
                {"projector": projector.name, "version": projector.version, "position": position,
                 "event_id": rejection.event_id, "reason": rejection.reason,
                 "detail": rejection.detail}
                for position, rejection in sorted(rejections.items())
            ])
        logger.debug("batch projected", extra={"projector": projector.tracking_name(),
                                               "fates": len(fates)})


# What one log row costs each read model's batch, relative to a newest-wins table: the pairs'
# steps took 50 % of a rebuild over a judged log and each newest-wins table about 20 %
# (bench/rebuild.py, docs/performance.md). Lanes balance these weights.
LANE_WEIGHTS: dict[str, float] = {"payment_ledger_pairs": 2.5}


def _gravest(errors: Sequence[BaseException]) -> BaseException:
    """Of the lanes' failures, the one to raise: a defect or a permanent database error before a
    transient one (which `run()` would wait out, hiding the other). The rest are logged."""
    def transient(error: BaseException) -> bool:
        diagnosis = db.diagnose(error)
        return diagnosis is not None and diagnosis.transient

    gravest = min(errors, key=transient)  # False (not transient) sorts first
    for error in errors:
        if error is not gravest:
            first_line = (str(error).splitlines() or [""])[0]
            logger.error("another projection lane failed too", extra={"error": f"{type(error).__name__}: {first_line}"})
    return gravest


def plan_lanes(projectors: Sequence[Projector], lanes: int) -> list[list[Projector]]:
    """The versions split into at most `lanes` groups of about equal work, heaviest first.

    A name's versions stay in one lane: versions at one checkpoint share a batch, judged once.
    Different lanes write different tables; both may keep the same verdicts, which
    `projections/verdicts.py` allows (equal verdicts, kept in position order).
    """
    names: dict[str, list[Projector]] = {}
    for projector in projectors:
        names.setdefault(projector.name, []).append(projector)
    groups: list[tuple[float, list[Projector]]] = []
    weight = {name: LANE_WEIGHTS.get(name, 1.0) * len(versions) for name, versions in names.items()}
    for name in sorted(names, key=lambda n: (-weight[n], n)):
        if len(groups) < max(1, lanes):
            groups.append((weight[name], list(names[name])))
            continue
        lightest = min(range(len(groups)), key=lambda i: groups[i][0])
        load, members = groups[lightest]
        groups[lightest] = (load + weight[name], members + names[name])
    return [members for _, members in groups]


def _trace_batch(cur: DictCursor, span: Span, versions: Sequence[str], after: int, up_to: int) -> None:
    """The batch's span: its range and versions, and a link to the trace each of its rows came with."""
    span.set_attributes({"bo.projector.versions": list(versions), "bo.log.after": after, "bo.log.up_to": up_to})
    rows = cur.execute(sql.SELECT_TRACEPARENTS, {"after": after, "up_to": up_to}).fetchall()
    for link in links(row["traceparent"] for row in rows):
        span.add_link(link.context)


class JudgeAhead:
    """Judges the log ahead of the projectors, keeping the verdicts (projections/verdicts.py).

    A thread with a connection of its own: from the slowest projector's checkpoint, it
    judges the log in ranges of `batch_size` as it grows, and commits each. A projector
    batch then asks `judged(after, up_to)` how far to read: up to what the judge has kept,
    waiting a moment for the range in progress, so it loads its verdicts instead of judging
    them again. Verdicts are the same whoever reaches them, so nothing depends on the judge
    for correctness: when it is behind, stopped, or failed (it logs why and ends), batches
    judge their rows themselves, as without it.
    """

    def __init__(self, url: str, start_at: Callable[[], int], *, batch_size: int, wait_s: float = 5.0) -> None:
        self.url = url
        # Smaller than a projector batch, so that a batch waiting on the range in progress
        # waits for a quarter of a batch's judging, not all of it.
        self.batch_size = max(500, batch_size // 4)
        self.wait_s = wait_s
        self._start_at = start_at
        self._judged_to = -1  # nothing known yet
        self._alive = False
        self._progress = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: psycopg.Connection[Any] | None = None

    def start(self) -> None:
        self._alive = True
        self._thread = threading.Thread(target=self._run, name="judge-ahead", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def judged(self, after: int, up_to: int) -> int:
        """How far a batch of (after, up_to] should read: to the judged frontier when the judge
        is at work past `after` (waiting up to `wait_s` for it to get there), else `up_to`."""
        deadline = time.monotonic() + self.wait_s
        with self._progress:
            while self._alive and after < up_to and self._judged_to <= after:
                left = deadline - time.monotonic()
                if left <= 0 or 0 <= self._judged_to < after - self.batch_size:
                    # The judge is slow, or more than a range behind this batch (another version
                    # far behind holds it back): judge the batch here rather than wait for it.
                    return up_to
                self._progress.wait(left)
            if not self._alive or self._judged_to <= after:
                return up_to
            return min(up_to, self._judged_to)

    def _run(self) -> None:
        follower = _Follower(self.url)
        judged_to = -1

        def step() -> None:
            nonlocal judged_to
            follower.listen()
            conn = self._connection()
            head = self._head(conn)
            judged_to = max(judged_to, self._start_at())  # never behind the projectors
            self._advance(judged_to)
            if judged_to >= head:
                follower.wait(1.0)  # NOTIFY wakes it as soon as the log grows
                return
            up_to = min(judged_to + self.batch_size, head)
            with conn.transaction(), conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
                batch.prepare(cur, batch.Rows(after=judged_to, up_to=up_to))
            judged_to = up_to
            self._advance(judged_to)

        def reconnect() -> None:
            follower.close()
            self._drop_connection()

        try:
            while not self._stop.is_set():
                db.with_retries(step, what="judge ahead", stop=self._stop, on_transient=reconnect)
        except DatabaseUnavailableError:
            pass  # asked to stop during an outage
        except Exception:
            logger.exception("judging ahead stopped; projector batches judge their own rows from now on")
        finally:
            with self._progress:
                self._alive = False
                self._progress.notify_all()
            follower.close()
            self._drop_connection()

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = db.connect(self.url)
        return self._conn

    def _drop_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _head(self, conn: psycopg.Connection[Any]) -> int:
        row = conn.execute(sql.SELECT_HEAD).fetchone()
        conn.commit()
        return int(row[0]) if row else 0

    def _advance(self, judged_to: int) -> None:
        with self._progress:
            if judged_to > self._judged_to:
                self._judged_to = judged_to
                self._progress.notify_all()


class _Follower:
    """The LISTEN connection that wakes the runner when the log grows (NOTIFY bo_event_log)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._conn: psycopg.Connection[Any] | None = None

    def listen(self) -> None:
        if self._conn is None or self._conn.closed:
            self._conn = db.connect(self.url, autocommit=True)
            self._conn.execute("LISTEN bo_event_log")

    def wait(self, timeout: float) -> None:
        self.listen()
        assert self._conn is not None
        for _ in self._conn.notifies(timeout=timeout, stop_after=1):
            pass

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
