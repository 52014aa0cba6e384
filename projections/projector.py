"""What a projector version is: a name, a version, the event types it handles, and `apply`.

The version feeds the physical table names (`bo.<name>_v<version>…`) and the checkpoint
key (`<name>:v<version>`), as Marten's projection versions do. `apply` receives only
valid, first-seen events in log order and answers each one's fate.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
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


class Projector(ABC):
    name: ClassVar[str]
    version: ClassVar[int]
    handles: ClassVar[frozenset[str]]

    @classmethod
    def tracking_name(cls) -> str:
        return f"{cls.name}:v{cls.version}"

    @classmethod
    def table_name(cls, suffix: str = "") -> str:
        return f"{cls.name}_v{cls.version}{suffix}"

    @classmethod
    def table(cls, suffix: str = "") -> sql.Identifier:
        return sql.Identifier("bo", cls.table_name(suffix))

    @abstractmethod
    def apply(self, cur: DictCursor, events: Sequence[LoggedEvent]) -> Mapping[int, str]:
        """Apply `events` (valid, first-seen, in position order); return position → fate."""
