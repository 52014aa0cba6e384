"""What a projector version is: a name, a version, the event types it handles, and `apply`.

The version feeds the physical table names (`bo.<name>_v<version>…`) and the checkpoint
key (`<name>:v<version>`), as Marten's projection versions do. `apply` receives only
valid, first-seen events in log order and answers each one's fate.
"""

from __future__ import annotations

import hashlib
import inspect
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from psycopg import Cursor, sql

from projections.contract import ValidEvent

DictCursor = Cursor[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class LoggedEvent:
    """A valid event with the log coordinates the ordering rules need."""

    position: int
    ingested_at: datetime
    event: ValidEvent


# Code every version's output depends on, besides its own class hierarchy.
_SHARED_CODE = ("contract.py", "contract_sql.py", "currencies.py", "rules.py", "newest_wins.py", "masking.py",
                "keys.py", "batch.py", "verdicts.py", "runner.py", "sql.py", "pairs/book.py")
_PACKAGE = Path(__file__).resolve().parent


class Projector(ABC):
    name: ClassVar[str]
    version: ClassVar[int]
    handles: ClassVar[frozenset[str]]
    # The read table's key, and every table the version owns (suffixes of bo.<name>_v<version>).
    key_column: ClassVar[str]
    tables: ClassVar[tuple[str, ...]] = ("",)

    @classmethod
    def tracking_name(cls) -> str:
        return f"{cls.name}:v{cls.version}"

    @classmethod
    def table_name(cls, suffix: str = "") -> str:
        return f"{cls.name}_v{cls.version}{suffix}"

    @classmethod
    def table(cls, suffix: str = "") -> sql.Identifier:
        return sql.Identifier("bo", cls.table_name(suffix))

    @classmethod
    def fingerprint(cls) -> str:
        """SHA-256 over the source of the code that decides this version's output.

        Recorded when a build starts: `bo projections status` flags a version whose code
        changed since, since its tables may no longer be what a rebuild would give.
        """
        files = {Path(inspect.getfile(c)).resolve() for c in cls.__mro__
                 if c.__module__.startswith("projections.")}
        files |= {(Path(inspect.getfile(cls)).parent / "sql.py").resolve()}
        files |= {_PACKAGE / name for name in _SHARED_CODE}
        digest = hashlib.sha256()
        for path in sorted(f for f in files if f.exists()):
            digest.update(str(path.relative_to(_PACKAGE)).encode() + b"\0" + path.read_bytes() + b"\0")
        return digest.hexdigest()[:16]

    @abstractmethod
    def apply(self, cur: DictCursor, events: Sequence[LoggedEvent]) -> Mapping[int, str]:
        """Apply `events` (valid, first-seen, in position order); return position → fate (what
        projections/fates.py derives on read: the tests hold the two equal)."""

    @abstractmethod
    def apply_batch(self, cur: DictCursor) -> None:
        """`apply`, set-based: the first-seen valid events of `bo_batch` (projections/batch.py) it
        handles, in position order (fates are derived on read: projections/fates.py)."""

    @abstractmethod
    def replay_scope(self, cur: DictCursor, events: Sequence[LoggedEvent], up_to: int) -> Sequence[int]:
        """Log positions (≤ up_to) whose state `events` take part in: what a replay must re-project.

        Re-projecting that scope from nothing, in position order, gives exactly what a build
        from position 0 gives for the entities concerned (dead-letter replay, SPEC 4.4).
        """

    @abstractmethod
    def forget(self, cur: DictCursor, events: Sequence[LoggedEvent]) -> None:
        """Delete the read rows built from the entities of `events` (before re-projecting them)."""
