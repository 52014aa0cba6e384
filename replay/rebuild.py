"""`bo rebuild NAME… [--version N]`: build projector versions from position 0 into their own tables.

The active version keeps serving meanwhile: the new version writes only its own tables
(`bo.<name>_v<N>…`) and its own checkpoint. Each batch commits its table changes and its
checkpoint together (see projections/runner.py), so a rebuild killed at any point resumes
from its checkpoint when started again. When it has read the whole log it is marked READY;
`bo project` keeps it caught up from then on, until it is activated or retired. Versions of
several read models are built side by side, one lane each (decisions §75).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from eventsourcing.postgres import PostgresDatastore
from psycopg import sql

from projections import registry
from projections import sql as projection_sql
from projections.errors import ProjectionError
from projections.projector import DictCursor, Projector
from projections.runner import BatchOutcome, ProjectionRunner
from projections.tracking import CheckpointStore

# Everything a version wrote, for a build from scratch (`--restart`). The version is not
# serving (checked under the registry lock), so no reader sees the tables empty.
DELETE_DEAD_LETTERS = "DELETE FROM bo.dead_letters WHERE projector = %(name)s AND projector_version = %(version)s"
DELETE_CHECKPOINT = "DELETE FROM bo.projection_tracking WHERE application_name = %(tracking)s"


class RebuildRefusedError(ProjectionError):
    pass


@dataclass(frozen=True, slots=True)
class RebuildOutcome:
    name: str
    version: int
    resumed_from: int
    read: int
    checkpoint: int
    status: str


def start(datastore: PostgresDatastore, projector: Projector, *, restart: bool = False,
          force: bool = False) -> int:
    """Register the version as BUILDING (or resume it); answer the checkpoint it resumes from.

    Holds the registry rows of the name and the version's own lock (the one every batch
    takes, see projections/runner.py), so no batch of `bo project` or of another rebuild is
    in flight while the version's tables are emptied.
    """
    return start_all(datastore, [projector], restart=restart, force=force)[projector.tracking_name()]


def start_all(datastore: PostgresDatastore, projectors: Sequence[Projector], *, restart: bool = False,
              force: bool = False) -> dict[str, int]:
    """`start` for several versions, all or none: one transaction, names locked in one order,
    so a version refused leaves every other one as it was (none registered, none emptied)."""
    with datastore.transaction(commit=True) as cur:
        return {p.tracking_name(): _start_in(cur, datastore, p, restart, force)
                for p in sorted(projectors, key=lambda p: p.tracking_name())}


def _start_in(cur: DictCursor, datastore: PostgresDatastore, projector: Projector, restart: bool,
              force: bool) -> int:
    params = {"name": projector.name, "version": projector.version, "fingerprint": projector.fingerprint(),
              "tracking": projector.tracking_name()}
    cur.execute(registry.LOCK_VERSIONS, params)
    cur.execute(projection_sql.LOCK_PROJECTOR, {"name": projector.tracking_name()})
    _require_tables(cur, projector)
    current = registry.registered(cur, projector.name, projector.version)
    if current is not None and current["status"] == registry.ACTIVE:
        raise RebuildRefusedError(
            f"{projector.name} v{projector.version} is ACTIVE: readers would see it emptied. "
            f"Declare a new version in code and rebuild that, then activate it.")
    if current is None:
        cur.execute(registry.REGISTER_BUILDING, params)
    elif restart or current["status"] == registry.RETIRED:
        if current["status"] == registry.READY and not force:
            raise RebuildRefusedError(
                f"{projector.name} v{projector.version} is READY (caught up, a rollback target):"
                " --restart would empty it; add --force if that is what you want")
        for suffix in projector.tables:
            cur.execute(sql.SQL("DELETE FROM {table}").format(table=projector.table(suffix)))
        cur.execute(DELETE_DEAD_LETTERS, params)
        cur.execute(DELETE_CHECKPOINT, params)
        cur.execute(registry.RESTART_BUILD, params)
    elif current["fingerprint"] and current["fingerprint"] != params["fingerprint"]:
        raise RebuildRefusedError(
            f"{projector.name} v{projector.version} was built by other code (fingerprint"
            f" {current['fingerprint']}, now {params['fingerprint']}): resuming would mix the two;"
            " rebuild it from position 0 with --restart")
    return CheckpointStore(datastore).checkpoint_in(cur, projector.tracking_name())


def _require_tables(cur: DictCursor, projector: Projector) -> None:
    for suffix in projector.tables:
        row = cur.execute("SELECT to_regclass(%(name)s) AS found",
                          {"name": f"bo.{projector.table_name(suffix)}"}).fetchone()
        if row is None or row["found"] is None:
            raise RebuildRefusedError(f"bo.{projector.table_name(suffix)} does not exist: run `bo migrate` with the"
                                      f" release that declares {projector.name} v{projector.version}")


def rebuild(
    datastore: PostgresDatastore,
    projector: Projector,
    topic_of: Mapping[str, str],
    *,
    batch_size: int = 20_000,
    restart: bool = False,
    force: bool = False,
    stop: threading.Event | None = None,
    on_progress: Callable[[int, int], None] = lambda done, total: None,
) -> RebuildOutcome:
    """Build `projector` up to the head of the log; mark it READY when caught up."""
    return rebuild_side_by_side(datastore, [projector], topic_of, batch_size=batch_size, restart=restart,
                                force=force, stop=stop, on_progress=on_progress)[0]


def rebuild_side_by_side(
    datastore: PostgresDatastore,
    projectors: Sequence[Projector],
    topic_of: Mapping[str, str],
    *,
    batch_size: int = 20_000,
    restart: bool = False,
    force: bool = False,
    stop: threading.Event | None = None,
    on_progress: Callable[[int, int], None] = lambda done, total: None,
    lanes: int = 1,
) -> list[RebuildOutcome]:
    """Build `projectors` (versions of different read models) up to the head of the log, in up
    to `lanes` lanes side by side (projections/runner.py `plan_lanes`: one transaction and one
    PostgreSQL backend each); mark each READY when caught up. `on_progress` gets the slowest
    checkpoint and the head after every round of batches."""
    names = [p.tracking_name() for p in projectors]
    if not names or len(set(names)) != len(names):
        raise ValueError(f"rebuild each version once, at least one: {names}")
    stop = stop or threading.Event()
    resumed = start_all(datastore, projectors, restart=restart, force=force)
    runner = ProjectionRunner(datastore, projectors, topic_of, batch_size=batch_size, lanes=lanes)
    checkpoints = dict(resumed)
    progress = threading.Lock()  # lanes report from their own threads

    def report(applied: Mapping[str, BatchOutcome] | None = None) -> None:
        with progress:
            for name, outcome in (applied or {}).items():
                if name in checkpoints:
                    checkpoints[name] = max(checkpoints[name], outcome.checkpoint)
            on_progress(min(checkpoints.values()), _head(datastore))

    report()
    while not stop.is_set() and min(checkpoints.values()) < _head(datastore):
        runner.catch_up(stop=stop, on_batch=report)  # lanes stop after their batch in flight
    outcomes = []
    for projector in projectors:
        status = registry.BUILDING
        if not stop.is_set():
            with datastore.transaction(commit=True) as cur:
                cur.execute(registry.MARK_READY, {"name": projector.name, "version": projector.version})
                current = registry.registered(cur, projector.name, projector.version)
            status = current["status"] if current else registry.BUILDING
        name = projector.tracking_name()
        # Rows from where this run resumed (positions are dense); `bo project` may have
        # applied some of them meanwhile, to a READY version being rebuilt.
        outcomes.append(RebuildOutcome(projector.name, projector.version, resumed[name],
                                       checkpoints[name] - resumed[name], checkpoints[name], status))
    return outcomes


def _head(datastore: PostgresDatastore) -> int:
    with datastore.transaction(commit=False) as cur:
        row = cur.execute(projection_sql.SELECT_HEAD).fetchone()
    return int(row["head"]) if row else 0
