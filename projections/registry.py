"""Every projector version declared in code, and their lifecycle in `bo.projectors`.

Lifecycle (SPEC 4.5): BUILDING (being built from position 0 into its own tables) →
READY (caught up; kept caught up by `bo project`, not serving) → ACTIVE (the stable
view serves it) → READY again when another version is activated (kept for rollback) →
RETIRED (no longer maintained). At most one version of a name is ACTIVE.
"""

from __future__ import annotations

import logging
from typing import Any

from projections.errors import UnknownProjectorError
from projections.ledger_entries.v1 import LedgerEntriesV1
from projections.ledger_entries.v2 import LedgerEntriesV2
from projections.newest_wins_projector import NewestWinsProjector
from projections.pairs.v1 import PaymentLedgerPairsV1
from projections.payment_orders.v1 import PaymentOrdersV1
from projections.projector import DictCursor, Projector

logger = logging.getLogger(__name__)

DECLARED: tuple[type[Projector], ...] = (LedgerEntriesV1, LedgerEntriesV2, PaymentOrdersV1, PaymentLedgerPairsV1)
NAMES: tuple[str, ...] = tuple(dict.fromkeys(cls.name for cls in DECLARED))

BUILDING, READY, ACTIVE, RETIRED = "BUILDING", "READY", "ACTIVE", "RETIRED"

# Versions `bo project` keeps current: the one serving and the caught-up ones kept for
# activation or rollback. A BUILDING version is `bo rebuild`'s, with its large batches.
SELECT_RUNNING_VERSIONS = """
    SELECT name, version, status FROM bo.projectors
     WHERE status IN ('ACTIVE', 'READY')
     ORDER BY name, version
"""

SELECT_VERSION = """
    SELECT name, version, status, fingerprint, created_at, build_started_at, built_at,
           activated_at, deactivated_at, retired_at
      FROM bo.projectors WHERE name = %(name)s AND version = %(version)s
"""

# Rows of one name, locked: lifecycle changes of a name are serialised on them.
LOCK_VERSIONS = """
    SELECT name, version, status, deactivated_at FROM bo.projectors
     WHERE name = %(name)s ORDER BY version FOR UPDATE
"""

REGISTER_BUILDING = """
    INSERT INTO bo.projectors (name, version, status, fingerprint, build_started_at)
    VALUES (%(name)s, %(version)s, 'BUILDING', %(fingerprint)s, now())
"""

RESTART_BUILD = """
    UPDATE bo.projectors
       SET status = 'BUILDING', fingerprint = %(fingerprint)s, build_started_at = now(), built_at = NULL,
           retired_at = NULL
     WHERE name = %(name)s AND version = %(version)s
"""

MARK_READY = """
    UPDATE bo.projectors SET status = 'READY', built_at = now()
     WHERE name = %(name)s AND version = %(version)s AND status = 'BUILDING'
"""


def declared(name: str, version: int) -> Projector:
    for cls in DECLARED:
        if cls.name == name and cls.version == version:
            return cls()
    raise UnknownProjectorError(name, version)


def latest(name: str) -> Projector:
    """The highest version of `name` declared in code."""
    versions = [cls for cls in DECLARED if cls.name == name]
    if not versions:
        raise UnknownProjectorError(name)
    return max(versions, key=lambda cls: cls.version)()


def running(cur: DictCursor) -> list[Projector]:
    """The ACTIVE and READY versions registered in `bo.projectors` that this code declares.

    A version registered by a newer release (after a rollback of the code, or on an old
    replica during a rolling deploy) is skipped with a warning, not fatal: the others go on.
    """
    projectors = []
    for row in cur.execute(SELECT_RUNNING_VERSIONS).fetchall():
        try:
            projectors.append(declared(row["name"], row["version"]))
        except UnknownProjectorError:
            logger.warning("registered projector version is not declared in this code; skipped",
                           extra={"projector": row["name"], "version": row["version"], "status": row["status"]})
    return projectors


SELECT_ACTIVE_VERSION = "SELECT version FROM bo.projectors WHERE name = %(name)s AND status = 'ACTIVE'"


def active(cur: DictCursor, name: str) -> Projector:
    """The version of `name` the stable view serves (version 1 if none is marked ACTIVE)."""
    row = cur.execute(SELECT_ACTIVE_VERSION, {"name": name}).fetchone()
    return declared(name, int(row["version"]) if row else 1)


def active_with_history(cur: DictCursor, name: str) -> NewestWinsProjector:
    """`active`, for a read model of one row per entity (the ones with a history and `as_of`)."""
    projector = active(cur, name)
    assert isinstance(projector, NewestWinsProjector), f"{name} keeps no row per entity"
    return projector


def registered(cur: DictCursor, name: str, version: int) -> dict[str, Any] | None:
    return cur.execute(SELECT_VERSION, {"name": name, "version": version}).fetchone()
