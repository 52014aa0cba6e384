"""What a long-running process (ingest, projection) says about itself: OK, or degraded and why.

While the database is down the process is `degraded` with `error_kind: transient` (it waits
and retries); on an error that retrying cannot heal it is `failed` with `error_kind:
permanent` just before it exits.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any


@dataclass
class _State:
    degraded_since: float | None = None
    reason: str | None = None
    last_progress: float | None = None
    transient: bool = True
    sqlstate: str | None = None


class Health:
    """Thread-safe status, read by the process's /healthz endpoint (bo/health_server.py)."""

    def __init__(self, component: str) -> None:
        self.component = component
        self._state = _State()
        self._lock = threading.Lock()

    def progressed(self) -> None:
        with self._lock:
            self._state = _State(last_progress=time.time())

    def reachable(self) -> None:
        """What was failing answers again (no progress made yet)."""
        with self._lock:
            self._state = _State(last_progress=self._state.last_progress)

    def degraded(self, reason: str, *, transient: bool = True, sqlstate: str | None = None) -> None:
        with self._lock:
            since = self._state.degraded_since or time.time()
            self._state = _State(since, reason, self._state.last_progress, transient, sqlstate)

    @property
    def ok(self) -> bool:
        with self._lock:
            return self._state.degraded_since is None

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            s = self._state
        degraded = s.degraded_since is not None
        return {
            "component": self.component,
            "status": ("degraded" if s.transient else "failed") if degraded else "ok",
            "error_kind": ("transient" if s.transient else "permanent") if degraded else None,
            "sqlstate": s.sqlstate,
            "degraded_for_s": round(time.time() - s.degraded_since, 1) if s.degraded_since else 0,
            "reason": s.reason,
            "last_progress_at": s.last_progress,
        }
