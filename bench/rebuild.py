"""Rebuild benchmark: 1,000,000 logged events projected by all three projections from position 0.

One command, no arguments: `python bench/rebuild.py`. It starts an embedded PostgreSQL,
logs ~1,000,000 generated events (bo.generate: an order and two ledger legs per payment,
each in two versions, shuffled so versions arrive out of order, 3% duplicate deliveries,
1% invalid messages), then:

1. full rebuild: the three version-1 projectors from position 0 to the head, in batches
   of 20,000, side by side in two lanes (what `bo rebuild` of the three names does on 2
   cores), checkpointing each batch; events/s counts log
   rows, each of which every projector that handles it has validated and applied; then
   the same again over the judged log (what a rebuild after a read model's change does: the
   contract's verdicts are kept, projections/verdicts.py);
2. live projection: the runner as `bo project` runs it (BO_PROJECT_BATCH_SIZE's default,
   following the log, judging ahead in its own thread) over 100,000 newly appended events;
3. freshness: events offered at 10,000/s for 60 s, by another process (as ingest is), while
   the live runner follows the log
   (LISTEN/NOTIFY); the time from a batch's append commit to its rows being applied by
   every projector, p50/p95; then the highest rate of a ladder (1,000 … 50,000/s, 20 s
   each) that keeps p95 within 1 s (issue 21's target).

The live phase is also measured against two figures of the same run: bare range upserts of
the same batches (newest per entity, newer wins) into a table as large as the read tables,
and the rate at which this one process generated, decoded and appended the log (ingest's
work without Kafka: issue 21 asks the live projection for twice one ingest process).

After the full rebuild it times its ceiling on the same log: one bare `INSERT … SELECT
DISTINCT ON` of each entity's newest row into a scratch table. Peak RSS is this process's
(the projector side; PostgreSQL runs in its own processes). The last line is the headline
figure and its ratio to the ceiling. The embedded server is stopped and its data removed on
success, on failure and on Ctrl-C.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import resource
import statistics
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from multiprocessing.queues import Queue
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from psycopg import sql as psql  # noqa: E402

from bench.server import bench_database  # noqa: E402
from bo.embedded import app_role_url  # noqa: E402
from bo.generate import StreamShape, generate  # noqa: E402
from bo.migrate import upgrade  # noqa: E402
from bo.settings import Settings  # noqa: E402
from eventstore import log  # noqa: E402
from eventstore.ingest.decode import decode  # noqa: E402
from eventstore.records import KafkaCoordinates, LogRecord  # noqa: E402
from projections.registry import DECLARED  # noqa: E402
from projections.runner import ProjectionRunner  # noqa: E402
from projections.tracking import CheckpointStore, datastore_for  # noqa: E402

TOPIC_OF = {"LedgerEntryUpserted": "bo.ledger-entries.v1", "PaymentOrderUpserted": "bo.payment-orders.v1"}
EVENTS = int(os.environ.get("BO_BENCH_EVENTS", "1000000"))  # override only for a quick try
LIVE_EVENTS = min(100_000, EVENTS)
LIVE_BATCH = Settings().project_batch_size
# The rebuild phases build the three read models side by side, as `bo rebuild ledger_entries
# payment_orders payment_ledger_pairs` does on 2 cores (one lane per core).
REBUILD_LANES = 2
EVENTS_PER_PAYMENT = 6.14  # measured share of bo.generate's default shape
FRESHNESS_SECONDS = 60.0  # issue 11: 10,000 events/s offered for 60 s
FRESHNESS_LADDER = (1_000, 1_500, 2_500, 3_500, 5_000, 7_500, 10_000, 15_000, 20_000, 30_000, 50_000)
LADDER_SECONDS = 20.0
FRESHNESS_SLO_S = 1.0  # issue 21: p95 within 1 s at 10,000 events/s offered
OFFER_EVERY_S = 0.05  # ingest commits a batch about this often at these rates


class Source:
    """Generated messages as log records with increasing Kafka offsets per topic.

    Each stream continues the payments of the one before (new ids, later times): the live
    and freshness phases project new events, not repeats of logged event ids.
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.next_payment = 0
        self.offsets: dict[str, int] = {}

    def stream(self, events: int) -> Iterator[LogRecord]:
        payments = int(events / EVENTS_PER_PAYMENT) + 1
        shape = StreamShape(payments=payments, seed=self.seed, first_payment=self.next_payment)
        self.seed += 1
        self.next_payment += payments
        for n, message in enumerate(generate(shape, TOPIC_OF["LedgerEntryUpserted"],
                                             TOPIC_OF["PaymentOrderUpserted"])):
            if n == events:
                return
            offset = self.offsets.get(message.topic, 0)
            self.offsets[message.topic] = offset + 1
            yield decode(KafkaCoordinates(message.topic, 0, offset, None), message.key, message.value,
                         list(message.headers))

    def records(self, events: int) -> list[LogRecord]:
        return list(self.stream(events))


def append(url: str, records: Iterable[LogRecord], batch: int = 5000) -> None:
    """Append in batches without holding the whole stream in memory."""
    with psycopg.connect(url) as conn:
        chunk: list[LogRecord] = []
        for record in records:
            chunk.append(record)
            if len(chunk) == batch:
                log.append(conn, "bench", chunk)
                chunk = []
        if chunk:
            log.append(conn, "bench", chunk)


def head(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT coalesce(max(position), 0) FROM bo.event_log").fetchone()
    return int(row[0]) if row else 0


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def v1_runner(url: str, batch_size: int, lanes: int | None = None) -> ProjectionRunner:
    """The version-1 projectors in `lanes` side by side (default: as `bo project` runs them)."""
    lanes = lanes or Settings().project_lanes
    return ProjectionRunner(datastore_for(url, pool_size=lanes + 1), [cls() for cls in DECLARED if cls.version == 1],
                            TOPIC_OF, batch_size=batch_size, lanes=lanes)


def offer(url: str, records: list[LogRecord], per_batch: int, appended: Queue[tuple[int, float] | None]) -> None:
    """In a process of its own, as ingest is: append `per_batch` records every OFFER_EVERY_S, and
    put each batch's head and append-commit time (the system's monotonic clock) on `appended`."""
    with psycopg.connect(url) as conn:
        started = time.monotonic()
        for n in range(0, len(records), per_batch):
            time.sleep(max(0.0, started + n / per_batch * OFFER_EVERY_S - time.monotonic()))
            result = log.append(conn, "bench", records[n:n + per_batch])
            appended.put((result.head, time.monotonic()))
    appended.put(None)


def freshness(url: str, source: Source, seconds: float, rate: int) -> tuple[list[float], float]:
    """Offer `rate` events/s for `seconds`, a batch every 50 ms from another process, while the
    live runner follows the log as `bo project` does; answer each batch's delay from its append
    commit to its rows applied by every projector, and the rate the offering process managed.

    The events are generated before the clock starts (a minute of them takes about 1 GB).
    """
    per_batch = max(1, int(rate * OFFER_EVERY_S))
    records = source.records(per_batch * int(seconds / OFFER_EVERY_S))
    appended: Queue[tuple[int, float] | None] = multiprocessing.get_context("fork").Queue()
    # Forked before this call starts its threads (a fork copies no thread, but copies the
    # locks they hold).
    offering = multiprocessing.get_context("fork").Process(target=offer, args=(url, records, per_batch, appended))
    offering.start()
    del records  # the child has its copy
    runner = v1_runner(url, LIVE_BATCH)
    stop = threading.Event()
    follower = threading.Thread(target=runner.run, args=(stop, url), kwargs={"idle_wait_s": 0.05})
    follower.start()
    checkpoints = CheckpointStore(runner.datastore)
    delays: list[float] = []
    pending: list[tuple[int, float]] = []
    done, first, last = False, None, None
    deadline = time.monotonic() + seconds + 900
    try:
        while not (done and not pending):
            if time.monotonic() > deadline or not follower.is_alive():
                raise RuntimeError("freshness: the runner stopped, or did not catch up within 15 minutes")
            while not done:
                try:
                    item = appended.get(timeout=0.005)
                except queue.Empty:
                    if not offering.is_alive() and appended.empty():
                        raise RuntimeError(f"freshness: the offering process ended ({offering.exitcode})") from None
                    break
                if item is None:
                    done = True
                    break
                pending.append(item)
                first = first if first is not None else item[1]
                last = item[1]
            slowest = min(checkpoints.checkpoint(p.tracking_name()) for p in runner.projectors)
            now = time.monotonic()
            while pending and pending[0][0] <= slowest:
                delays.append(now - pending.pop(0)[1])
    finally:
        stop.set()
        if offering.is_alive():
            offering.terminate()
        offering.join()
        follower.join()
        runner.datastore.close()
    span = (last - first) if first is not None and last is not None and last > first else float("nan")
    return sorted(delays), per_batch * (len(delays) - 1) / span


def p95(delays: list[float]) -> float:
    return delays[int(0.95 * (len(delays) - 1))] if delays else float("inf")


def highest_rate_within(url: str, source: Source, slo_s: float, seconds: float, at_10k: float,
                        managed_10k: float) -> int:
    """The highest offered rate, of FRESHNESS_LADDER, whose freshness p95 is within `slo_s`: up the
    ladder from 10,000 events/s when that rate kept it (p95 `at_10k`), down the ladder otherwise.
    A rung the offering process could not reach counts at the rate it managed."""
    def kept(rate: int) -> tuple[bool, int]:
        delays, offered = freshness(url, source, seconds, rate)
        print(f"  offered {rate:,} events/s for {seconds:.0f} s (managed {offered:,.0f}/s): p95"
              f" {p95(delays) * 1000:,.0f} ms", flush=True)
        return p95(delays) <= slo_s, min(rate, int(offered))

    if at_10k <= slo_s:
        best = min(10_000, int(managed_10k))
        for rate in (r for r in FRESHNESS_LADDER if r > 10_000):
            ok, managed = kept(rate)
            if not ok:
                break
            best = managed
            if managed < 0.9 * rate:
                print(f"  the offering process cannot offer {rate:,} events/s: the ladder stops", flush=True)
                break
        return best
    for rate in reversed(FRESHNESS_LADDER):
        if rate < 10_000:
            ok, managed = kept(rate)
            if ok:
                return managed
    return 0


def follow_until_caught_up(url: str) -> float:
    """Seconds for the live runner, following the log as `bo project` does (judging ahead
    included), to apply everything logged."""
    runner = v1_runner(url, LIVE_BATCH)
    target = head(url)
    stop = threading.Event()
    follower = threading.Thread(target=runner.run, args=(stop, url), kwargs={"idle_wait_s": 0.05})
    started = time.monotonic()
    follower.start()
    try:
        runner.wait_for(target, timeout=3600)
        return time.monotonic() - started
    finally:
        stop.set()
        follower.join()
        runner.datastore.close()


def forget_v1(admin: str) -> None:
    """Empty what the version-1 projectors built (tables, dead letters, checkpoints); the log's
    verdicts stay (projections/verdicts.py)."""
    with psycopg.connect(admin, autocommit=True) as conn:
        for cls in DECLARED:
            if cls.version == 1:
                for suffix in cls.tables:
                    conn.execute(psql.SQL("TRUNCATE {}").format(cls.table(suffix)))
        conn.execute("DELETE FROM bo.dead_letters")
        conn.execute("DELETE FROM bo.projection_tracking")
        conn.execute("VACUUM ANALYZE")


# The set-based ceiling (issue 11): one bare statement over the same log, newest version of
# each entity into a scratch table, with no contract, no fates and no checkpoints.
CEILING = [
    "CREATE TABLE bo.bench_ceiling (event_type text, entity_id text, position bigint, raw_value bytea)",
    """INSERT INTO bo.bench_ceiling
       SELECT DISTINCT ON (event_type, entity_id) event_type, entity_id, position, raw_value
         FROM bo.event_log ORDER BY event_type, entity_id, position DESC""",
    "CREATE UNIQUE INDEX bench_ceiling_key ON bo.bench_ceiling (event_type, entity_id)",
]
# The live projection's ceiling: a bare range upsert of the same batches (newest per entity in
# the range, newer than the stored row wins) into the scratch table the ceiling filled, as the
# live runner upserts into read tables a rebuild filled.
RANGE_UPSERT = """
    INSERT INTO bo.bench_ceiling AS t
    SELECT DISTINCT ON (event_type, entity_id) event_type, entity_id, position, raw_value
      FROM bo.event_log WHERE position > %(after)s AND position <= %(up_to)s AND entity_id IS NOT NULL
     ORDER BY event_type, entity_id, position DESC
    ON CONFLICT (event_type, entity_id) DO UPDATE
       SET position = EXCLUDED.position, raw_value = EXCLUDED.raw_value WHERE EXCLUDED.position > t.position
"""


def ceiling(admin: str) -> float:
    """Log rows/s of the bare DISTINCT ON statement, on the data just rebuilt; the scratch table
    stays, keyed, for `range_upsert_ceiling`."""
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(CEILING[0])
        started = time.monotonic()
        conn.execute(CEILING[1])
        seconds = time.monotonic() - started
        conn.execute(CEILING[2])
    return head(admin) / seconds


def range_upsert_ceiling(admin: str, after: int, up_to: int) -> float:
    """Log rows/s of bare range upserts of (after, up_to] in batches of LIVE_BATCH, a commit each."""
    with psycopg.connect(admin, autocommit=True) as conn:
        started = time.monotonic()
        for low in range(after, up_to, LIVE_BATCH):
            conn.execute(RANGE_UPSERT, {"after": low, "up_to": min(low + LIVE_BATCH, up_to)})
        seconds = time.monotonic() - started
        conn.execute("DROP TABLE bo.bench_ceiling")
    return (up_to - after) / seconds


def main() -> None:
    with bench_database("bo-bench-rebuild-") as (_, admin):
        measure(admin)


def measure(admin: str) -> None:
    upgrade(admin)
    url = app_role_url(admin)
    source = Source(seed=2026)

    started = time.monotonic()
    append(url, source.stream(EVENTS))
    logged_s = time.monotonic() - started
    append_rate = head(url) / logged_s  # one process generating, decoding and appending (the chain too)
    print(f"logged {head(url)} events in {logged_s:.1f} s: {append_rate:,.0f} events/s from one process"
          f" (peak RSS so far {peak_rss_mb():.0f} MB)", flush=True)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")  # as after any bulk load; both rebuilds start with statistics

    runner = v1_runner(url, 20_000, lanes=REBUILD_LANES)
    started = time.monotonic()
    read = runner.catch_up()
    rebuild_s = time.monotonic() - started
    rows = head(url)
    runner.datastore.close()
    rebuild_rate = rows / rebuild_s
    print(f"full rebuild: {rows} log rows, three projections ({read} projector reads) in {rebuild_s:.1f} s:"
          f" {rebuild_rate:,.0f} events/s, peak RSS {peak_rss_mb():.0f} MB", flush=True)
    forget_v1(admin)
    runner = v1_runner(url, 20_000, lanes=REBUILD_LANES)
    started = time.monotonic()
    runner.catch_up()
    judged_s = time.monotonic() - started
    runner.datastore.close()
    judged_rate = rows / judged_s
    print(f"rebuild again over the judged log (a read model's new version; the contract unchanged):"
          f" {judged_s:.1f} s: {judged_rate:,.0f} events/s, peak RSS {peak_rss_mb():.0f} MB", flush=True)
    bare = ceiling(admin)
    print(f"ceiling: one INSERT ... SELECT DISTINCT ON over the same log: {bare:,.0f} events/s", flush=True)

    live_from = head(url)
    append(url, source.stream(LIVE_EVENTS))
    live_s = follow_until_caught_up(url)
    live_rate = LIVE_EVENTS / live_s
    upsert = range_upsert_ceiling(admin, live_from, head(url))
    print(f"live projection (as `bo project` runs: batches of up to {LIVE_BATCH:,}, judging ahead):"
          f" {live_rate:,.0f} events/s; bare range upserts of the same batches {upsert:,.0f} events/s:"
          f" {live_rate / upsert:.2f} of them, {live_rate / append_rate:.2f}x one process's append rate",
          flush=True)

    seconds = FRESHNESS_SECONDS if EVENTS >= 1_000_000 else 2.0
    delays, offered = freshness(url, source, seconds, 10_000)
    if delays:
        print(f"freshness at 10,000 events/s offered for {seconds:.0f} s (managed {offered:,.0f}/s): p50"
              f" {statistics.median(delays) * 1000:,.0f} ms, p95 {p95(delays) * 1000:,.0f} ms"
              f" over {len(delays)} batches", flush=True)
    within = highest_rate_within(url, source, FRESHNESS_SLO_S, LADDER_SECONDS if EVENTS >= 1_000_000 else 2.0,
                                 p95(delays), offered)
    print(f"highest offered rate with freshness p95 <= {FRESHNESS_SLO_S:.0f} s: {within:,} events/s"
          + ("" if within else f" (none of {', '.join(f'{r:,}' for r in FRESHNESS_LADDER)})"), flush=True)
    print(f"peak RSS of the whole benchmark (the events it offered included): {peak_rss_mb():.0f} MB")
    print(f"rebuild: {judged_rate:,.0f} events/s over a judged log, {rebuild_rate:,.0f} judging it too"
          f" ({judged_rate / bare:.2f} and {rebuild_rate / bare:.2f} of the set-based ceiling measured in this run)")

if __name__ == "__main__":
    main()
