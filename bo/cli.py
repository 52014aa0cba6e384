"""The `bo` command line: one sub-command per operator task (SPEC 7)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from prometheus_client import CollectorRegistry

from bo import logs
from bo.checkpoints import CheckpointKey, verify_checkpoints, write_checkpoint
from bo.dev_issuer import AUDIENCE as DEV_AUDIENCE
from bo.dev_issuer import DevIssuer
from bo.embedded import DevBroker, database_url, migration_database_url
from bo.entra import configure_database_auth, kafka_client_settings
from bo.health_server import serve_health
from bo.migrate import upgrade
from bo.progress import Progress
from bo.publish import BadLineError, publish, read_messages, topic_map
from bo.runtime import ingest_consumer, preflight, projection_runner
from bo.settings import ConfigurationError, Environment, Settings, load_settings
from eventstore.db import connect, diagnose, with_retries
from eventstore.errors import DatabaseUnavailableError, PermanentDatabaseError
from eventstore.health import Health
from eventstore.ingest.metrics import IngestMetrics
from projections.errors import ProjectionError
from projections.metrics import DatabaseFigures, ProjectorMetrics
from projections.registry import NAMES
from projections.verdicts_verify import VerdictReport, verify_verdicts
from telemetry.metrics import bound_port, serve_metrics
from telemetry.tracing import TracingConfigurationError, configure_tracing

log = logging.getLogger("bo")

# Exit codes besides 0 (done) and 130 (interrupted): a database error that retrying cannot
# heal, and a database that stayed unreachable for a one-shot command.
EXIT_PERMANENT, EXIT_UNAVAILABLE = 3, 4


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    handler: Callable[[Settings, argparse.Namespace], int] = args.handler
    try:
        settings = load_settings()
        logs.configure_logging(settings.log_level)
        logs.redact_secrets_of(settings)
        configure_database_auth(settings)
        return handler(settings, args)
    except KeyboardInterrupt:
        return 130
    except (BadLineError, ConfigurationError, TracingConfigurationError, BadInputError) as exc:
        _say(exc)
        return 2
    except ProjectionError as exc:
        _say(exc)
        return 1
    except Exception as exc:
        return _database_failure(exc)


class BadInputError(Exception):
    """A file or argument the command cannot use (missing, unreadable, not a folder); one line says why."""


def _say(message: object) -> None:
    """One line on stderr for the operator, with any secret in it removed (bo/logs.py `redact`)."""
    print(f"bo: {logs.redact(str(message))}", file=sys.stderr)


def readable_file(path: Path) -> Path:
    """`path` if it is a file this process can read, else a BadInputError saying why."""
    try:
        with path.open("rb"):
            pass
    except IsADirectoryError:
        raise BadInputError(f"{path}: is a folder, not a file") from None
    except OSError as exc:
        raise BadInputError(f"{path}: cannot be read ({exc.strerror})") from None
    return path


def existing_folder(path: Path) -> Path:
    """`path` if it is a folder, else a BadInputError saying why."""
    if not path.is_dir():
        raise BadInputError(f"{path}: {'is not a folder' if path.exists() else 'no such folder'}")
    return path


def _database_failure(exc: Exception) -> int:
    """A database error that ended a command: one line and an exit code, for every command."""
    diagnosis = diagnose(exc)
    if diagnosis is None:
        raise exc
    if diagnosis.transient:  # a one-shot command that found the database down, or asked to stop meanwhile
        _say(f"the database is unavailable: {diagnosis.line}")
        return EXIT_UNAVAILABLE
    permanent = exc if isinstance(exc, PermanentDatabaseError) else diagnosis.permanent_error()
    log.error("stopped by a database error that retrying cannot heal",
              extra={"sqlstate": permanent.sqlstate, "error": str(permanent)})
    _say(permanent)
    return EXIT_PERMANENT


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bo", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler: Callable[[Settings, argparse.Namespace], int],
                help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        return sub

    demo = command("demo", _demo, "run the whole flow on the embedded defaults and serve the API")
    demo.add_argument("--payments", type=int, default=2000, help="generated payments (default 2000)")
    demo.add_argument("--bind", default="127.0.0.1:8000", help="API address (default 127.0.0.1:8000)")
    demo.add_argument("--metrics-port", type=int, default=9100,
                      help="ingest's and projection's metrics on 127.0.0.1:PORT (default 9100; 0: any free port)")
    demo.add_argument("--once", action="store_true",
                      help="check the API answers, print the summary and exit instead of serving")
    command("migrate", _migrate, "apply the Alembic migrations")
    command("dev-broker", _dev_broker, "run a Kafka-protocol development broker until stopped")
    publish_cmd = command("publish", _publish, "send messages in the samples format to Kafka")
    publish_cmd.add_argument("file", type=Path, help="JSON Lines file of {topic, key, value, headers}")
    ingest_cmd = command("ingest", _ingest, "consume Kafka into bo.event_log until stopped")
    project_cmd = command("project", _project, "keep the active and ready projector versions caught up until stopped")
    for long_running in (ingest_cmd, project_cmd):
        long_running.add_argument("--health-port", type=int, default=None,
                                  help="serve GET /healthz on BO_LISTEN_HOST:PORT (200 ok, 503 degraded)")
        long_running.add_argument("--metrics-port", type=int, default=None,
                                  help="serve GET /metrics (Prometheus) on BO_LISTEN_HOST:PORT")
    rebuild_cmd = command("rebuild", _rebuild, "build projector versions from position 0 into their own tables"
                                               " (several read models side by side)")
    rebuild_cmd.add_argument("name", choices=NAMES, nargs="+")
    rebuild_cmd.add_argument("--version", type=int, default=None,
                             help="the version to build of each name (default: the highest declared in code)")
    rebuild_cmd.add_argument("--restart", action="store_true",
                             help="discard what this version has built and start again from position 0")
    rebuild_cmd.add_argument("--force", action="store_true", help="with --restart: also empty a READY version")
    rebuild_cmd.add_argument("--batch-size", type=int, default=20_000, help="log rows per transaction")
    backfill_cmd = command("backfill", _backfill, "append a dump (JSON Lines or CSV) to the log")
    backfill_cmd.add_argument("file", type=Path, help="a .jsonl file of envelopes, or a .csv with a header row")
    projections_cmd = command("projections", _no_subcommand, "projector versions: `bo projections status`")
    projections_sub = projections_cmd.add_subparsers(dest="projections_command", required=True, metavar="COMMAND")
    status_cmd = projections_sub.add_parser(
        "status", help="versions, checkpoints, lag, dead letters and quality figures",
        description="versions, checkpoints, lag, dead letters and quality figures")
    status_cmd.add_argument("--json", action="store_true", help="print JSON instead of a table")
    status_cmd.set_defaults(handler=_projections_status)
    diff_cmd = projections_sub.add_parser(
        "diff", help="rows added, removed and changed between two versions (exit 1 when they differ)",
        description="rows added, removed and changed between two versions, per column with samples;"
                    " exit 0 when the tables are the same, 1 when they differ")
    diff_cmd.add_argument("name", choices=NAMES)
    diff_cmd.add_argument("a", type=int, help="version A (usually the active one)")
    diff_cmd.add_argument("b", type=int, help="version B (usually the new one)")
    diff_cmd.add_argument("--samples", type=int, default=5, help="sample keys per difference (default 5)")
    diff_cmd.add_argument("--json", action="store_true", help="print JSON instead of text")
    diff_cmd.set_defaults(handler=_projections_diff)
    activate_cmd = projections_sub.add_parser(
        "activate", help="serve version N (atomic for readers)",
        description="make version N the one the API reads, in one transaction; refused for a version"
                    " that is still building or behind the active one, unless --force")
    activate_cmd.add_argument("name", choices=NAMES)
    activate_cmd.add_argument("version", type=int)
    activate_cmd.add_argument("--force", action="store_true", help="activate even if not caught up")
    activate_cmd.set_defaults(handler=_projections_activate)
    rollback_cmd = projections_sub.add_parser(
        "rollback", help="serve again the version that was active before",
        description="make the previously active version active again (atomic for readers)")
    rollback_cmd.add_argument("name", choices=NAMES)
    rollback_cmd.add_argument("--force", action="store_true", help="roll back even if it is behind")
    rollback_cmd.set_defaults(handler=_projections_rollback)
    retire_cmd = projections_sub.add_parser(
        "retire", help="stop maintaining an inactive version", description="stop maintaining an inactive version;"
        " it can no longer be rolled back to without a rebuild")
    retire_cmd.add_argument("name", choices=NAMES)
    retire_cmd.add_argument("version", type=int)
    retire_cmd.set_defaults(handler=_projections_retire)
    dlq_cmd = command("dlq", _no_subcommand, "dead letters: `bo dlq list`, `bo dlq show ID`, `bo dlq replay`")
    dlq_sub = dlq_cmd.add_subparsers(dest="dlq_command", required=True, metavar="COMMAND")
    dlq_list = dlq_sub.add_parser("list", help="dead letters, oldest first", description="dead letters, oldest first")
    dlq_list.add_argument("--reason", choices=REASONS, help="only this reason code")
    dlq_list.add_argument("--projector", help="only this projector (e.g. ledger_entries)")
    dlq_list.add_argument("--status", choices=("OPEN", "RESOLVED", "ALL"), default="OPEN", help="default OPEN")
    dlq_list.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    dlq_list.set_defaults(handler=_dlq_list)
    dlq_show = dlq_sub.add_parser("show", help="one dead letter with its log row",
                                  description="one dead letter with its log row; personal data masked unless --unmask")
    dlq_show.add_argument("id", type=int)
    dlq_show.add_argument("--unmask", action="store_true", help="show the raw value as logged")
    dlq_show.set_defaults(handler=_dlq_show)
    dlq_replay = dlq_sub.add_parser(
        "replay", help="re-run the current projector code on open dead letters",
        description="re-run the current projector code on open dead letters (SPEC 4.4): those that now apply"
                    " are marked RESOLVED, the rest stay OPEN with an updated reason")
    dlq_replay.add_argument("--reason", choices=REASONS, help="only this reason code")
    dlq_replay.add_argument("--projector", choices=NAMES, help="only this projector")
    dlq_replay.add_argument("--id", type=int, action="append", dest="ids", help="only this dead letter (repeatable)")
    dlq_replay.set_defaults(handler=_dlq_replay)
    history_cmd = command("history", _no_subcommand, "a record's full event history: `bo history tx ID`")
    history_sub = history_cmd.add_subparsers(dest="history_command", required=True, metavar="KIND")
    for kind, what in (("tx", "a ledger entry (tx_id)"), ("order", "a payment order (order_id)")):
        one = history_sub.add_parser(kind, help=f"every log row about {what}, with its fate",
                                     description=f"every log row about {what}, in position order, with its Kafka"
                                                 " coordinates or backfill source and its fate in the active version;"
                                                 " personal data masked unless --unmask")
        one.add_argument("id")
        one.add_argument("--unmask", action="store_true", help="show the payer's data as logged")
        one.add_argument("--json", action="store_true", help="print JSON lines instead of a table")
        one.set_defaults(handler=_history, history_kind=kind)
    log_cmd = command("log", _no_subcommand, "the event log: `bo log verify`, `bo log checkpoint`")
    log_sub = log_cmd.add_subparsers(dest="log_command", required=True, metavar="COMMAND")
    verify_cmd = log_sub.add_parser(
        "verify", help="check the log's and the audit trail's hash chains and immutability",
        description="check the log's and the audit trail's hash chains and immutability; with --checkpoints, also"
                    " that nothing up to each signed checkpoint changed")
    verify_cmd.add_argument("--checkpoints", type=Path, default=None, metavar="DIR",
                            help="a folder of checkpoints written by `bo log checkpoint`")
    verify_cmd.set_defaults(handler=_log_verify)
    checkpoint_cmd = log_sub.add_parser(
        "checkpoint", help="write a signed checkpoint of both chains where the database cannot write",
        description="sign the heads of the log's and the audit trail's hash chains with the checkpoint key under"
                    " BO_HOME and write them to a new read-only file in DIR (write-once storage in production)")
    checkpoint_cmd.add_argument("--dir", type=Path, default=None, metavar="DIR",
                                help="where to write it (default BO_HOME/checkpoints)")
    checkpoint_cmd.set_defaults(handler=_log_checkpoint)
    probe_cmd = command("probe", _probe, "GET a health endpoint once: exit 0 on 2xx (container healthchecks)")
    probe_cmd.add_argument("url", nargs="?", default=None,
                           help="what to ask (default BO_PROBE_URL, else http://127.0.0.1:8000/healthz)")
    token_cmd = command("dev-token", _dev_token, "print a JWT signed by the development issuer (not in prod)")
    token_cmd.add_argument("--role", action="append", required=True, choices=("ADMIN_READ", "ADMIN_AUDIT"),
                           dest="roles", help="a role the token carries (repeatable)")
    token_cmd.add_argument("--sub", default="dev-user", help="the subject (default dev-user)")
    token_cmd.add_argument("--name", default=None, help="the display name claim")
    token_cmd.add_argument("--ttl", type=int, default=3600, help="seconds until it expires (default 3600)")
    serve = command("serve", _serve, "serve the admin API under gunicorn")
    serve.add_argument("--bind", default="127.0.0.1:8000", help="address (default 127.0.0.1:8000)")
    serve.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    serve.add_argument("--metrics-port", type=int, default=None,
                       help="also serve every worker's request metrics from gunicorn's master on"
                            " BO_LISTEN_HOST:PORT/metrics, where a busy worker cannot hold a scrape up")
    return parser


def stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def handle(signum: int, _frame: object) -> None:
        log.info("stopping", extra={"signal": signum})
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    return stop


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    url, stop = migration_database_url(settings), stop_on_signals()
    try:
        with_retries(lambda: upgrade(url), what="migrate", stop=stop)
    except DatabaseUnavailableError:
        if stop.is_set():
            return 130
        raise
    print("migrations applied")
    return 0


def _dev_broker(settings: Settings, args: argparse.Namespace) -> int:
    broker = DevBroker()
    print(f"bootstrap={broker.bootstrap}", flush=True)
    stop = stop_on_signals()
    while not stop.wait(1.0):
        pass
    broker.close()
    return 0


def _require_bootstrap(settings: Settings) -> str:
    if not settings.kafka_bootstrap_servers:
        raise ConfigurationError("set BO_KAFKA_BOOTSTRAP_SERVERS (for example from `bo dev-broker`)")
    return settings.kafka_bootstrap_servers


def _publish(settings: Settings, args: argparse.Namespace) -> int:
    total = sum(1 for line in readable_file(args.file).open(encoding="utf-8") if line.strip())
    bootstrap = _require_bootstrap(settings)
    sent = publish(bootstrap, read_messages(args.file, topic_map(settings.topics)), total=total,
                   client_settings=kafka_client_settings(settings, producer=True))
    print(f"published {sent} messages")
    return 0


def _ingest(settings: Settings, args: argparse.Namespace) -> int:
    stop = stop_on_signals()
    bootstrap = _require_bootstrap(settings)
    health = _health(settings, args, "ingest")
    configure_tracing("ingest")
    metrics = IngestMetrics()
    _serve_metrics(settings, args, metrics.registry)  # from the start, as /healthz
    url = database_url(settings)
    if not _started(url, stop, health):
        return 0
    log.info("ingesting", extra={"topics": list(settings.topics), "group": settings.kafka_group_id})
    stats = ingest_consumer(settings, url, bootstrap, health=health, metrics=metrics).run(stop)
    log.info("ingest stopped", extra={
        "appended": stats.appended, "redelivered": stats.redelivered, "batches": stats.batches,
        "oversized": stats.oversized,
        "batch_ms_p50": stats.percentile_ms(0.50), "batch_ms_p95": stats.percentile_ms(0.95),
        "batch_ms_p99": stats.percentile_ms(0.99)})
    return 0


def _project(settings: Settings, args: argparse.Namespace) -> int:
    stop = stop_on_signals()
    health = _health(settings, args, "project")
    configure_tracing("project")
    url = database_url(settings)
    metrics = ProjectorMetrics()
    metrics.registry.register(DatabaseFigures(lambda: connect(url)))  # bo_database_up 0 while it is down
    _serve_metrics(settings, args, metrics.registry)  # from the start, as /healthz
    if not _started(url, stop, health):
        return 0
    try:
        runner, datastore = projection_runner(settings, url, stop, health, metrics=metrics)
    except DatabaseUnavailableError:
        if stop.is_set():
            return 0
        raise
    log.info("projecting", extra={"versions": [p.tracking_name() for p in runner.projectors]})
    try:
        runner.run(stop, url, follow_registry=True)
    finally:
        datastore.close()
    return 0


def _health(settings: Settings, args: argparse.Namespace, component: str) -> Health:
    """The process's health, served on `--health-port` from the start (before the database answers)."""
    health = Health(component)
    if args.health_port:
        serve_health(health, args.health_port, settings.listen_host)
    return health


def _serve_metrics(settings: Settings, args: argparse.Namespace, registry: CollectorRegistry) -> None:
    if args.metrics_port is not None:
        server = serve_metrics(registry, args.metrics_port, settings.listen_host)
        log.info("metrics served", extra={"port": bound_port(server)})


def _started(url: str, stop: threading.Event, health: Health) -> bool:
    """The start-up checks (server version, migrations); False when asked to stop while waiting."""
    try:
        preflight(url, stop, health)
    except DatabaseUnavailableError:
        if stop.is_set():
            return False
        raise
    return True


def _backfill(settings: Settings, args: argparse.Namespace) -> int:
    from replay.backfill import backfill

    path = readable_file(args.file)
    if not _started(database_url(settings), stop_on_signals(), Health("backfill")):
        return 130
    with connect(database_url(settings)) as conn, Progress("backfill (bytes)", path.stat().st_size) as progress:
        report = backfill(conn, path, batch_size=settings.ingest_batch_size, progress=progress.advance)
    print(f"backfill of {report.file_identity}: {report.lines} lines, {report.appended} appended, "
          f"{report.already_logged} already in the log")
    if report.bad_line_count:
        shown = ", ".join(map(str, report.bad_lines[:50]))
        more = "" if report.bad_line_count <= 50 else f" and {report.bad_line_count - 50} more"
        print(f"{report.bad_line_count} lines could not be read and were logged as raw bytes "
              f"(the projectors dead-letter them): lines {shown}{more}")
    return 0


def _projections_status(settings: Settings, args: argparse.Namespace) -> int:
    from projections.status import projector_status, quality

    with connect(database_url(settings)) as conn:
        versions, figures = projector_status(conn), quality(conn)
    if args.json:
        print(json.dumps({"projectors": versions, "quality": figures}, default=str, indent=2))
        return 0
    print(f"{'projector':<22}{'version':>8}  {'status':<9}{'checkpoint':>11}{'head':>10}"
          f"{'lag events':>12}{'lag s':>9}{'open DLQ':>10}")
    for v in versions:
        print(f"{v['name']:<22}{v['version']:>8}  {v['status']:<9}{v['checkpoint']:>11}{v['head']:>10}"
              f"{v['lag_events']:>12}{float(v['lag_seconds']):>9.1f}{v['open_dead_letters']:>10}"
              + (f"  built in {float(v['build_seconds']):.1f} s" if v["build_seconds"] is not None else "")
              + ("  CODE CHANGED since it was built: declare a new version" if v["code_changed"] else ""))
    print(f"pair_incomplete_ratio {figures['pair_incomplete_ratio']} of {figures['pairs']} pairs; "
          f"pairing latency p50 {figures['pairing_latency_p50_s']} s, p95 {figures['pairing_latency_p95_s']} s; "
          f"version_missing_cnt {figures['version_missing_cnt']}")
    return 0


def _rebuild(settings: Settings, args: argparse.Namespace) -> int:
    from bo.runtime import topic_of
    from projections import registry
    from projections.tracking import datastore_for
    from replay.rebuild import rebuild_side_by_side

    names = list(dict.fromkeys(args.name))  # each read model once, in the order given
    projectors = [registry.declared(name, args.version) if args.version is not None else registry.latest(name)
                  for name in names]
    lanes = min(len(projectors), _cores())  # side by side, as many as this process may use cores
    stop = stop_on_signals()
    if not _started(database_url(settings), stop, Health("rebuild")):
        return 130
    datastore = datastore_for(database_url(settings), pool_size=lanes + 1)
    label = ", ".join(p.tracking_name() for p in projectors)
    with Progress(f"rebuild {label} (log rows)", None) as bar:
        resumed: list[int] = []

        def progress(done: int, total: int) -> None:
            if not resumed:  # rate and ETA count this run's rows, not those of an earlier run
                resumed.append(done)
            bar.total = total - resumed[0]
            bar.advance(done - resumed[0] - bar.done)

        outcomes = rebuild_side_by_side(datastore, projectors, topic_of(settings), batch_size=max(1, args.batch_size),
                                        restart=args.restart, force=args.force, stop=stop, on_progress=progress,
                                        lanes=lanes)
    datastore.close()
    for outcome in outcomes:
        print(f"{outcome.name} v{outcome.version}: {outcome.status} at checkpoint {outcome.checkpoint}"
              f" ({outcome.read} log rows read, resumed from {outcome.resumed_from})")
    if any(outcome.status == "BUILDING" for outcome in outcomes):
        print("stopped before catching up: run the same command again to resume", file=sys.stderr)
        return 130
    return 0 if all(outcome.status == "READY" for outcome in outcomes) else 1


def _cores() -> int:
    """The cores this process may run on (its affinity, which a container's CPU set limits)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _projections_diff(settings: Settings, args: argparse.Namespace) -> int:
    import dataclasses

    from projections.tracking import datastore_for
    from replay.diff import diff

    datastore = datastore_for(database_url(settings))
    try:
        result = diff(datastore, args.name, args.a, args.b, samples=max(0, args.samples))
    except ProjectionError as exc:  # exit 1 means "they differ": errors are 2, as diff(1) does
        print(f"bo: {exc}", file=sys.stderr)
        return 2
    finally:
        datastore.close()
    if args.json:
        print(json.dumps({**dataclasses.asdict(result), "differ": result.differ}, default=str, indent=2))
        return 1 if result.differ else 0
    print(f"{result.name} v{result.a} ({result.status_a}, checkpoint {result.checkpoint_a}, {result.rows_a} rows)"
          f" → v{result.b} ({result.status_b}, checkpoint {result.checkpoint_b}, {result.rows_b} rows): "
          f"{result.added} added, {result.removed} removed, {result.changed} changed")
    if result.checkpoint_a != result.checkpoint_b:
        print("  note: the versions have read different amounts of the log; differences may be lag")
    for column, count in result.changed_by_column.items():
        print(f"  {column}: {count} changed")
        for sample in result.samples[column]:
            print(f"    {sample['key']}: {sample['a_value']!r} → {sample['b_value']!r}")
    if result.added_samples:
        print(f"  added, e.g.: {', '.join(result.added_samples)}")
    if result.removed_samples:
        print(f"  removed, e.g.: {', '.join(result.removed_samples)}")
    for version, columns in ((result.a, result.only_in_a), (result.b, result.only_in_b)):
        if columns:
            print(f"  columns only in v{version}: {', '.join(columns)}")
    print("the versions differ" if result.differ else "the versions hold the same rows")
    return 1 if result.differ else 0


def _projections_activate(settings: Settings, args: argparse.Namespace) -> int:
    from projections.tracking import datastore_for
    from replay.cutover import activate

    datastore = datastore_for(database_url(settings))
    cutover = activate(datastore, args.name, args.version, force=args.force)
    datastore.close()
    was = f"v{cutover.previous}" if cutover.previous is not None else "none"
    print(f"{cutover.name}: v{cutover.active} is active (was {was})")
    return 0


def _projections_rollback(settings: Settings, args: argparse.Namespace) -> int:
    from projections.tracking import datastore_for
    from replay.cutover import rollback

    datastore = datastore_for(database_url(settings))
    cutover = rollback(datastore, args.name, force=args.force)
    datastore.close()
    print(f"{cutover.name}: rolled back to v{cutover.active} (was v{cutover.previous})")
    return 0


def _projections_retire(settings: Settings, args: argparse.Namespace) -> int:
    from projections.tracking import datastore_for
    from replay.cutover import retire

    datastore = datastore_for(database_url(settings))
    retire(datastore, args.name, args.version)
    datastore.close()
    print(f"{args.name}: v{args.version} is retired")
    return 0


REASONS = ("INVALID_JSON", "SCHEMA_VIOLATION", "UNKNOWN_EVENT_TYPE", "UNSUPPORTED_SCHEMA_VERSION",
           "DUPLICATE_EVENT_ID_CONFLICT")


def _dlq_list(settings: Settings, args: argparse.Namespace) -> int:
    from replay.dead_letters import DeadLetterFilter, list_dead_letters

    where = DeadLetterFilter(args.reason, args.projector, None if args.status == "ALL" else args.status)
    with connect(database_url(settings)) as conn:
        letters = list_dead_letters(conn, where, limit=max(1, args.limit))
    for d in letters:
        print(f"{d['id']:>6}  {d['projector']} v{d['projector_version']}  position {d['position']}  "
              f"{d['reason']}  {d['event_id'] or '-'}  {d['status']}  {d['detail'][:100]}")
    print(f"{len(letters)} dead letter(s)")
    return 0


def _dlq_show(settings: Settings, args: argparse.Namespace) -> int:
    from replay.dead_letters import show_dead_letter

    with connect(database_url(settings)) as conn:
        letter = show_dead_letter(conn, args.id, unmask=args.unmask)
    if letter is None:
        print(f"bo: no dead letter {args.id}", file=sys.stderr)
        return 1
    print(json.dumps(letter, default=str, indent=2, ensure_ascii=False))
    return 0


def _dlq_replay(settings: Settings, args: argparse.Namespace) -> int:
    from bo.runtime import topic_of
    from projections.tracking import datastore_for
    from replay.dead_letters import DeadLetterFilter, replay_dead_letters

    datastore = datastore_for(database_url(settings))
    report = replay_dead_letters(datastore, topic_of(settings), DeadLetterFilter(args.reason, args.projector),
                                 args.ids)
    datastore.close()
    print(f"replayed {report.replayed} dead letter(s): {report.resolved} resolved, "
          f"{report.replayed - report.resolved} still open {report.still_open or ''}")
    return 0


def _history(settings: Settings, args: argparse.Namespace) -> int:
    from api.representations import history_item
    from projections import history

    subject = history.TX if args.history_kind == "tx" else history.PAYMENT_ORDER
    shown, after = 0, 0
    with connect(database_url(settings)) as conn:
        while True:
            rows, following = history.history_page(conn, subject, args.id, after, 200)
            for row in rows:
                item = history_item(row, unmask=args.unmask)
                shown += 1
                if args.json:
                    print(json.dumps(item, default=str, ensure_ascii=False))
                    continue
                where = item["source"]
                origin = f"{where['file']}:{where['line']}" if "file" in where else \
                    f"{where['topic']}[{where['partition']}]@{where['offset']}"
                fate = item["fate"] or "not applied yet"
                reason = f" {item['reason']}: {item['detail']}" if item["reason"] else ""
                print(f"{item['position']:>10}  {item['ingested_at']}  {origin}  {item['event_id'] or '-'}  "
                      f"{fate}{reason}")
                print(f"            {json.dumps(item['payload'], ensure_ascii=False)}")
            if following is None:
                break
            after = following
    if not shown:
        print(f"bo: no log row about {args.history_kind} {args.id}", file=sys.stderr)
        return 1
    return 0


def _no_subcommand(settings: Settings, args: argparse.Namespace) -> int:
    return 2


def _log_verify(settings: Settings, args: argparse.Namespace) -> int:
    from api.audit_log import verify_trail
    from eventstore.verify import verify

    if args.checkpoints is not None:
        existing_folder(args.checkpoints)
    with connect(database_url(settings)) as conn:
        total_row = conn.execute("SELECT count(*) FROM bo.event_log").fetchone()
        total = int(total_row[0]) if total_row else None
        with Progress("verify", total) as progress:
            report = verify(conn, progress=progress.advance)
        with Progress("verify verdicts", total) as progress:
            judged = verify_verdicts(conn, progress=progress.advance)
        trail = verify_trail(conn)
    _print_verification("log", report.ok, report.rows, f"position {report.head}", report.problems,
                        "position", report.broken_position)
    _print_verdicts(judged)
    _print_verification("audit trail", trail.ok, trail.rows, f"id {trail.head}", trail.problems,
                        "audit row", trail.broken_id)
    if args.checkpoints is None:
        return 0 if report.ok and judged.ok and trail.ok else 1
    with connect(database_url(settings)) as conn:
        signed = verify_checkpoints(conn, CheckpointKey(settings.home), args.checkpoints)
    if signed.ok:
        print(f"checkpoints verified: {signed.checked} signed checkpoint(s) in {args.checkpoints} still hold")
    else:
        print(f"checkpoint verification FAILED ({signed.checked} checked):")
        for problem in signed.problems or []:
            print(f"  - {problem}")
        for chain, at in sorted((signed.first_bad or {}).items()):
            print(f"first bad {chain} {'position' if chain == 'log' else 'audit row'}: {at}"
                  " (a rewrite shows at the first checkpoint it broke: the change is at or before it)")
    return 0 if report.ok and judged.ok and trail.ok and signed.ok else 1


def _print_verdicts(report: VerdictReport) -> None:
    other = f"; {report.other_code} kept by other contract code, not re-derivable by this one" \
        if report.other_code else ""
    if report.ok:
        print(f"verdicts verified: {report.judged} log rows judged again, {report.checked} kept verdicts equal"
              f" to their re-derivation{other}")
        return
    print(f"verdict verification FAILED: {report.found} problem(s) among {report.judged} log rows judged again{other}:")
    for problem in report.problems:
        print(f"  - {problem}")
    print(f"first bad verdict position: {report.first_bad}")


def _log_checkpoint(settings: Settings, args: argparse.Namespace) -> int:

    folder = args.dir or Path(settings.home).expanduser() / "checkpoints"
    with connect(database_url(settings)) as conn:
        path = write_checkpoint(conn, CheckpointKey(settings.home), folder)
    print(f"checkpoint written: {path}")
    return 0


def _print_verification(what: str, ok: bool, rows: int, head: str, problems: list[str], unit: str,
                        broken: int | None) -> None:
    if ok:
        print(f"{what} verified: {rows} rows, hash chain intact up to {head}; "
              "append-only triggers enabled; bo_app cannot update, delete or truncate")
        return
    print(f"{what} verification FAILED after checking {rows} rows:")
    for problem in problems:
        print(f"  - {problem}")
    if broken is not None:
        print(f"first broken {unit}: {broken}")


def _probe(settings: Settings, args: argparse.Namespace) -> int:
    from bo import probe

    return probe.main([args.url] if args.url else [])


def _dev_token(settings: Settings, args: argparse.Namespace) -> int:
    if settings.env is Environment.PROD:
        raise ConfigurationError("the development issuer is refused with BO_ENV=prod: use your identity provider")
    if not 1 <= args.ttl <= 86_400:
        raise ConfigurationError("--ttl must be between 1 and 86400 seconds")
    issuer = DevIssuer(settings.home)
    print(issuer.token(sorted(set(args.roles)), subject=args.sub, name=args.name, ttl_s=args.ttl,
                       audience=settings.oidc_audience or DEV_AUDIENCE, roles_claim=settings.roles_claim))
    return 0


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    from bo.serve import serve

    serve(settings, args.bind, args.workers, metrics_port=args.metrics_port)
    return 0


def _demo(settings: Settings, args: argparse.Namespace) -> int:
    from bo.demo import run_demo

    if "log_level" not in settings.model_fields_set:
        # The demo talks to a person: only warnings as JSON lines unless asked for more.
        settings = settings.model_copy(update={"log_level": "WARNING"})
        logs.configure_logging(settings.log_level)
    return run_demo(settings, payments=args.payments, bind=args.bind, once=args.once,
                    started=time.monotonic(), metrics_port=args.metrics_port)


if __name__ == "__main__":
    sys.exit(main())
