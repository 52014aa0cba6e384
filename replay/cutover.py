"""`bo projections activate / rollback / retire`: which version the stable views serve.

The views (migration 0003) read the version that `bo.projectors` marks ACTIVE, decided
once per statement. A cut-over is therefore two UPDATEs in one transaction: readers see
the old version until it commits and the new one after, never a mix and never an error.
Lifecycle changes of one name serialise on its registry rows (`FOR UPDATE`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eventsourcing.postgres import PostgresDatastore

from projections import registry
from projections.errors import ProjectionError
from projections.projector import DictCursor

SELECT_CHECKPOINTS = """
    SELECT p.version, p.status, coalesce(t.notification_id, 0) AS checkpoint
      FROM bo.projectors p
      LEFT JOIN bo.projection_tracking t ON t.application_name = p.name || ':v' || p.version
     WHERE p.name = %(name)s
"""

DEACTIVATE = """
    UPDATE bo.projectors SET status = 'READY', deactivated_at = now()
     WHERE name = %(name)s AND status = 'ACTIVE'
"""

ACTIVATE = """
    UPDATE bo.projectors SET status = 'ACTIVE', activated_at = now()
     WHERE name = %(name)s AND version = %(version)s
"""

RETIRE = """
    UPDATE bo.projectors SET status = 'RETIRED', retired_at = now()
     WHERE name = %(name)s AND version = %(version)s
"""

# Whether the stable view has a branch over the version's table (else activating it would
# serve nothing).
VIEW_READS_TABLE = """
    SELECT 1 FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
     WHERE r.ev_class = to_regclass(%(view)s) AND d.refobjid = to_regclass(%(table)s)
     LIMIT 1
"""

# The version active before the current one: the most recently deactivated, still kept.
SELECT_PREVIOUS = """
    SELECT version FROM bo.projectors
     WHERE name = %(name)s AND status = 'READY' AND deactivated_at IS NOT NULL
     ORDER BY deactivated_at DESC LIMIT 1
"""


class CutoverRefusedError(ProjectionError):
    pass


@dataclass(frozen=True, slots=True)
class Cutover:
    name: str
    previous: int | None
    active: int


def activate(datastore: PostgresDatastore, name: str, version: int, *, force: bool = False) -> Cutover:
    """Make `version` the one readers see.

    Refused, unless forced, for a version still BUILDING or behind the active one: it has
    caught up when it has applied at least as much of the log as the version readers see
    now, so a cut-over never takes data away from them.
    """
    registry.declared(name, version)
    with datastore.transaction(commit=True) as cur:
        return _activate(cur, name, version, force=force)


def rollback(datastore: PostgresDatastore, name: str, *, force: bool = False) -> Cutover:
    """Activate again the version that was active before the current one."""
    with datastore.transaction(commit=True) as cur:
        cur.execute(registry.LOCK_VERSIONS, {"name": name})
        row = cur.execute(SELECT_PREVIOUS, {"name": name}).fetchone()
        if row is None:
            raise CutoverRefusedError(f"{name}: no previous version to roll back to (none is READY after"
                                      " having been active)")
        return _activate(cur, name, int(row["version"]), force=force)


def retire(datastore: PostgresDatastore, name: str, version: int) -> None:
    """Stop maintaining a version that is not active; its tables stay until a migration drops them."""
    with datastore.transaction(commit=True) as cur:
        versions = _versions(cur, name)
        if version not in versions:
            raise CutoverRefusedError(f"{name} v{version} is not registered")
        if versions[version]["status"] == registry.ACTIVE:
            raise CutoverRefusedError(f"{name} v{version} is ACTIVE: activate another version first")
        cur.execute(RETIRE, {"name": name, "version": version})


def _activate(cur: DictCursor, name: str, version: int, *, force: bool) -> Cutover:
    versions = _versions(cur, name)
    target = versions.get(version)
    if target is None:
        raise CutoverRefusedError(f"{name} v{version} is not registered: build it first with"
                                  f" `bo rebuild {name} --version {version}`")
    active = next((v for v, row in versions.items() if row["status"] == registry.ACTIVE), None)
    if active == version:
        return Cutover(name, active, version)
    if not cur.execute(VIEW_READS_TABLE, {"view": f"bo.{name}", "table": f"bo.{name}_v{version}"}).fetchone():
        raise CutoverRefusedError(f"bo.{name} has no branch for v{version}: the migration that creates its tables"
                                  " must also add it to the view (see migrations/versions/0003_*)")
    if target["status"] == registry.RETIRED:
        raise CutoverRefusedError(f"{name} v{version} is RETIRED: rebuild it before activating it")
    if not force:
        if target["status"] == registry.BUILDING:
            raise CutoverRefusedError(f"{name} v{version} is still BUILDING (checkpoint {target['checkpoint']}):"
                                      " wait for `bo rebuild` to finish, or --force")
        if active is not None and target["checkpoint"] < versions[active]["checkpoint"]:
            raise CutoverRefusedError(
                f"{name} v{version} is behind: checkpoint {target['checkpoint']} < {versions[active]['checkpoint']}"
                f" of active v{active}; let `bo project` catch it up, or --force")
    cur.execute(DEACTIVATE, {"name": name})
    cur.execute(ACTIVATE, {"name": name, "version": version})
    return Cutover(name, active, version)


def _versions(cur: DictCursor, name: str) -> dict[int, dict[str, Any]]:
    cur.execute(registry.LOCK_VERSIONS, {"name": name})
    return {int(r["version"]): r for r in cur.execute(SELECT_CHECKPOINTS, {"name": name}).fetchall()}
