"""Serving the API: building its dependencies from settings, and running it under gunicorn.

The connection pool is opened inside each gunicorn worker (in `load()`, after the fork),
never in the master.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from pathlib import Path
from typing import Any

import falcon
from gunicorn import http
from gunicorn.app.base import BaseApplication
from gunicorn.workers.gthread import ThreadWorker
from gunicorn.workers.sync import SyncWorker

from api.app import AppDeps, create_app
from api.audit import Network, trusted_networks
from api.auth import BearerTokens
from api.errors import PROBLEM_JSON
from api.tokens import MAX_TOKEN_BYTES, JwksCache, KeySource, StaticKeys, TokenVerifier, jwks_fetcher
from bo import dev_issuer, logs
from bo.dev_issuer import DevIssuer
from bo.embedded import database_url
from bo.migrate import schema_expectation
from bo.settings import ConfigurationError, Environment, Settings
from eventstore import db
from eventstore.db import open_pool
from eventstore.errors import DatabaseUnavailableError
from telemetry import metrics, tracing


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


def authenticator(settings: Settings) -> BearerTokens:
    """Bearer tokens of the configured issuer; outside prod with none configured, the development issuer's."""
    if settings.oidc_issuer or settings.oidc_jwks_url:
        if not settings.oidc_issuer or not settings.oidc_audience:
            raise ConfigurationError("set BO_OIDC_ISSUER and BO_OIDC_AUDIENCE: every token's iss and aud are"
                                     " checked against them")
        urls = [u for u in (settings.oidc_issuer, settings.oidc_jwks_url) if u]
        if settings.env is Environment.PROD and not all(u.startswith("https://") for u in urls):
            raise ConfigurationError("in prod the issuer and its JWKS must be https:// URLs")
        keys: KeySource = JwksCache(jwks_fetcher(jwks_url=settings.oidc_jwks_url, issuer=settings.oidc_issuer,
                                                 require_https=settings.env is Environment.PROD))
        verifier = TokenVerifier(issuer=settings.oidc_issuer, audience=settings.oidc_audience, keys=keys,
                                 leeway_s=settings.oidc_leeway_s)
    else:
        if settings.env is Environment.PROD:
            raise ConfigurationError("bo serve in prod needs a real issuer: set BO_OIDC_ISSUER and BO_OIDC_AUDIENCE"
                                     " (the development issuer is for local and dev only)")
        dev = DevIssuer(settings.home)
        verifier = TokenVerifier(issuer=dev_issuer.ISSUER, audience=settings.oidc_audience or dev_issuer.AUDIENCE,
                                 keys=StaticKeys(dev.jwks()), leeway_s=settings.oidc_leeway_s)
    return BearerTokens(verifier, roles_claim=settings.roles_claim, audit_implies_read=settings.audit_implies_read)


def proxies(settings: Settings) -> tuple[Network, ...]:
    """`BO_TRUSTED_PROXIES`, refused in one line when it is not addresses or CIDR blocks."""
    try:
        return trusted_networks(settings.trusted_proxies)
    except ValueError as exc:
        raise ConfigurationError(f"BO_TRUSTED_PROXIES: {exc}") from None


def app_deps(settings: Settings, url: str | None = None) -> AppDeps:
    """What the API needs, from settings; the pool is opened here (so: in the worker)."""
    tokens = authenticator(settings)
    # One connection per request in flight: a worker serves `api_threads` at once.
    size = max(4, settings.api_threads)
    primary = url or database_url(settings)
    replica = settings.read_database_url.get_secret_value() if settings.read_database_url else None
    pool = open_pool(replica or primary, min_size=1, max_size=size, name="api-read" if replica else "api")
    return AppDeps(
        pool=pool,
        # With a read replica, the audit rows go to the primary (docs/runbooks/scaling.md).
        audit_pool=open_pool(primary, min_size=1, max_size=size, name="api-audit") if replica else None,
        authenticator=tokens,
        trusted_proxies=proxies(settings),
        cursor_secret=cursor_secret(settings),
        schema=schema_expectation(),
        correlation_id=logs.correlation_id,
        trace_id=logs.trace_id,
    )


def build_app(settings: Settings, url: str | None = None) -> falcon.App[falcon.Request, falcon.Response]:
    return create_app(app_deps(settings, url))


class GunicornApp(BaseApplication):  # type: ignore[misc]
    def __init__(self, settings: Settings, url: str, options: dict[str, Any]) -> None:
        self.settings, self.url, self.options = settings, url, options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> falcon.App[falcon.Request, falcon.Response]:
        prepare_worker(self.settings)
        return build_app(self.settings, self.url)


def prepare_worker(settings: Settings) -> None:
    """In each gunicorn worker, before its app is built: logging, metrics kept in the
    multiprocess directory, and tracing (the exporter's thread does not survive a fork)."""
    logs.configure_logging(settings.log_level)
    metrics.use_multiprocess_values()
    if tracing.configure_tracing("api"):
        tracing.instrument_falcon()


def serve(settings: Settings, bind: str, workers: int, *, metrics_port: int | None = None) -> None:
    tracing.exporter_name()  # a bad OTEL_TRACES_EXPORTER or sampling ratio is refused here, once
    tracing.sampled_ratio("api")
    url = database_url(settings)
    cursor_secret(settings)  # made once in the master so every worker shares it
    authenticator(settings)  # a bad configuration is refused here, once; the dev key is made once
    proxies(settings)
    try:  # refuse what cannot heal (an old server, other migrations); start during an outage
        db.preflight(url, schema_expectation(), attempts=1)
    except DatabaseUnavailableError as exc:
        log.warning("starting while the database is unavailable; /readyz says so until it is back",
                    extra={"error": str(exc)})
    with metrics.multiprocess_directory():
        GunicornApp(settings, url, gunicorn_options(settings, bind, workers, metrics_port=metrics_port)).run()


# A header line gunicorn reads and hands to the app: twice the longest token the app accepts
# (api/tokens.py), so that a longer token still reaches the app, which answers 401 and audits
# it. Gunicorn's default (8190) refused such a request itself, unaudited.
MAX_HEADER_LINE_BYTES = 2 * MAX_TOKEN_BYTES
# What gunicorn refuses before the app sees a request, as the app would answer it (problem+json).
_REFUSALS: dict[type[Exception], tuple[int, str, str]] = {
    http.errors.LimitRequestHeaders: (431, "Request Header Fields Too Large",
                                      f"a header line is over {MAX_HEADER_LINE_BYTES} bytes, or there are too many"),
    http.errors.LimitRequestLine: (414, "URI Too Long", "the request line is too long"),
}

_MALFORMED = (http.errors.InvalidRequestLine, http.errors.InvalidRequestMethod, http.errors.InvalidHTTPVersion,
              http.errors.InvalidHeader, http.errors.InvalidHeaderName, http.errors.ObsoleteFolding,
              http.errors.InvalidChunkSize, http.errors.ChunkMissingTerminator, http.errors.InvalidChunkExtension)


class ProblemJsonRefusals:
    """A gunicorn worker whose own refusals (a request it cannot parse or that exceeds its limits)
    are problem+json like every other answer, not gunicorn's HTML page. Such a request never
    reaches the app: its route and caller are unknown, so it has no audit row (docs/security.md)."""

    def handle_error(self, req: Any, client: Any, addr: Any, exc: Exception) -> None:
        refusal = next((v for k, v in _REFUSALS.items() if isinstance(exc, k)), None)
        if refusal is None and isinstance(exc, _MALFORMED):
            refusal = (400, "Bad Request", "the request is not well-formed HTTP/1.1")
        if refusal is None:
            super().handle_error(req, client, addr, exc)  # type: ignore[misc]
            return
        status, title, detail = refusal
        log.warning("request refused before the app", extra={"status": status, "exception": type(exc).__name__,
                                                              "client": (addr or ("",))[0]})
        body = json.dumps({"type": "about:blank", "title": title, "status": status, "detail": detail}).encode()
        head = (f"HTTP/1.1 {status} {title}\r\nConnection: close\r\nContent-Type: {PROBLEM_JSON}\r\n"
                f"Content-Length: {len(body)}\r\nCache-Control: no-store\r\n\r\n").encode("latin-1")
        try:
            client.sendall(head + body)
        except OSError:
            log.debug("the refused client left before its answer")


class ProblemJsonSyncWorker(ProblemJsonRefusals, SyncWorker):  # type: ignore[misc]
    """gunicorn's sync worker, with problem+json refusals."""


class ProblemJsonThreadWorker(ProblemJsonRefusals, ThreadWorker):  # type: ignore[misc]
    """gunicorn's gthread worker, with problem+json refusals."""


def gunicorn_options(settings: Settings, bind: str, workers: int, *, metrics_port: int | None = None
                     ) -> dict[str, Any]:
    def when_ready(server: Any) -> None:
        if metrics_port is not None:  # the master merges the workers' files: no worker answers it
            served = metrics.serve_metrics(metrics.multiprocess_registry(), metrics_port, settings.listen_host)
            log.info("request metrics served", extra={"port": metrics.bound_port(served)})

    def child_exit(server: Any, worker: Any) -> None:
        metrics.mark_worker_dead(worker.pid)

    return {
        "when_ready": when_ready, "child_exit": child_exit,
        "bind": bind, "workers": workers, "timeout": 30,
        "worker_class": ProblemJsonThreadWorker if settings.api_threads > 1 else ProblemJsonSyncWorker,
        "threads": settings.api_threads, "limit_request_field_size": MAX_HEADER_LINE_BYTES,
        "graceful_timeout": 10, "accesslog": None, "preload_app": False,
        "control_socket_disable": True, "logconfig_dict": gunicorn_json_logs(settings.log_level.upper()),
    }
