"""The WSGI application built from the environment, for gunicorn's own command line."""

from __future__ import annotations

from bo import logs
from bo.serve import build_app
from bo.settings import load_settings

_settings = load_settings()
logs.configure_logging(_settings.log_level)
logs.redact_secrets_of(_settings)
application = build_app(_settings)
