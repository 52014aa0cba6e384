"""Serving the API: building its dependencies from settings, and running it under gunicorn.

The connection pool is opened inside each gunicorn worker (in `load()`, after the fork),
never in the master.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path
from typing import Any

import falcon
from gunicorn.app.base import BaseApplication

from api.app import AppDeps, create_app
from api.auth import LocalOpenAccess
from bo import logs
from bo.embedded import database_url
from bo.migrate import schema_expectation
from bo.settings import Environment, Settings
from eventstore import db
from eventstore.db import open_pool
from eventstore.errors import DatabaseUnavailableError


def gunicorn_json_logs(level: str) -> dict[str, Any]:
    """gunicorn's own logs as the same JSON lines as every other bo log."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "bo.logs.JsonFormatter"}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json"}},
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {
            "gunicorn.error": {"handlers": ["stderr"], "level": level, "propagate": False},
            "gunicorn.access": {"handlers": ["stderr"], "level": level, "propagate": False},
        },
    }


log = logging.getLogger(__name__)


class ConfigurationError(Exception):
    pass


def cursor_secret(settings: Settings) -> bytes:
    """BO_CURSOR_SECRET, or (outside prod) a key kept under BO_HOME, made on first use."""
    if settings.cursor_secret is not None:
        return settings.cursor_secret.get_secret_value().encode("utf-8")
    if settings.env is Environment.PROD:
        raise ConfigurationError("BO_CURSOR_SECRET must be set in prod")
    path = Path(settings.home).expanduser() / "cursor.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(32))
    return path.read_text().strip().encode("utf-8")


def build_app(settings: Settings, url: str | None = None) -> falcon.App[falcon.Request, falcon.Response]:
    if settings.env is Environment.PROD:
        raise ConfigurationError(
            "bo serve refuses env=prod until JWT authentication is configured (SPEC 6)")
    pool = open_pool(url or database_url(settings), min_size=1, max_size=4, name="api")
    return create_app(AppDeps(
        pool=pool,
        authenticator=LocalOpenAccess(),
        cursor_secret=cursor_secret(settings),
        schema=schema_expectation(),
        correlation_id=logs.correlation_id,
        trace_id=logs.trace_id,
    ))


class GunicornApp(BaseApplication):  # type: ignore[misc]
    def __init__(self, settings: Settings, url: str, options: dict[str, Any]) -> None:
        self.settings, self.url, self.options = settings, url, options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> falcon.App[falcon.Request, falcon.Response]:
        logs.configure_logging(self.settings.log_level)
        return build_app(self.settings, self.url)


def serve(settings: Settings, bind: str, workers: int) -> None:
    url = database_url(settings)
    cursor_secret(settings)  # made once in the master so every worker shares it
    try:  # refuse what cannot heal (an old server, other migrations); start during an outage
        db.preflight(url, schema_expectation(), attempts=1)
    except DatabaseUnavailableError as exc:
        log.warning("starting while the database is unavailable; /readyz says so until it is back",
                    extra={"error": str(exc)})
    GunicornApp(settings, url, {
        "bind": bind, "workers": workers, "worker_class": "sync", "timeout": 30,
        "graceful_timeout": 10, "accesslog": None, "preload_app": False,
        "control_socket_disable": True, "logconfig_dict": gunicorn_json_logs(settings.log_level.upper()),
    }).run()
