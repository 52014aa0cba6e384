"""Settings for every bo process, read once from `BO_*` variables (and `.env` locally).

Entry points call `load_settings()`; everything below them receives the frozen object.
Secrets are `SecretStr` so that they never appear in logs or reprs.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any

from psycopg import ProgrammingError
from psycopg.conninfo import conninfo_to_dict
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ConfigurationError(Exception):
    """The settings cannot work (a missing secret, an issuer without an audience); one line says why."""


class Environment(StrEnum):
    LOCAL = "local"
    DEV = "dev"
    PROD = "prod"


class DatabaseAuth(StrEnum):
    PASSWORD = "password"  # noqa: S105 (a mode, not a secret): whatever BO_DATABASE_URL carries
    ENTRA = "entra"  # the managed identity's Entra ID token as the password (bo/entra.py)


class KafkaAuth(StrEnum):
    PLAINTEXT = "plaintext"  # the development broker, the compose Kafka
    ENTRA = "entra"  # Event Hubs: SASL_SSL OAUTHBEARER with the managed identity's token


class Settings(BaseSettings):
    """Every `BO_` variable of SPEC section 7, plus a few operational knobs."""

    model_config = SettingsConfigDict(
        env_prefix="BO_", env_file=".env", extra="ignore", frozen=True
    )

    env: Environment = Environment.LOCAL
    database_url: SecretStr | None = None
    # A read replica for the API's look-ups (docs/runbooks/scaling.md); the audit rows are
    # written to BO_DATABASE_URL (the primary) all the same. Unset: everything on BO_DATABASE_URL.
    read_database_url: SecretStr | None = None
    migration_database_url: SecretStr | None = None
    home: Path = Path("./.bo")
    kafka_bootstrap_servers: str | None = None
    kafka_group_id: str = "bo-ingest"
    topic_ledger: str = "bo.ledger-entries.v1"
    topic_orders: str = "bo.payment-orders.v1"
    oidc_issuer: str | None = None
    oidc_audience: str | None = None
    oidc_jwks_url: str | None = None
    roles_claim: str = "roles"
    oidc_leeway_s: float = Field(default=30.0, ge=0, le=300)
    audit_implies_read: bool = False
    trusted_proxies: str | None = None
    log_level: str = "INFO"
    ingest_batch_size: int = Field(default=2000, ge=1, le=100_000)
    project_batch_size: int = Field(default=10_000, ge=1, le=100_000)
    # Read models `bo project` projects side by side, each lane in its own transactions and
    # PostgreSQL backend (projections/runner.py `plan_lanes`). One by default: following the
    # log, the judging thread and one lane fill 2 cores (decisions §75).
    project_lanes: int = Field(default=1, ge=1, le=16)
    kafka_session_timeout_ms: int = Field(default=6_000, ge=1_000)
    kafka_group_instance_id: str | None = None
    cursor_secret: SecretStr | None = None
    max_message_bytes: int = Field(default=1024 * 1024, ge=1024)
    # Threads per gunicorn worker: 1 runs sync workers; more run gthread workers, whose
    # requests overlap their waits on PostgreSQL (the audit row's commit above all).
    api_threads: int = Field(default=1, ge=1, le=64)
    # The address `--metrics-port` and `--health-port` listen on: loopback unless a scraper
    # elsewhere must reach them (0.0.0.0 in a container).
    listen_host: str = "127.0.0.1"
    # On Azure: how bo proves who it is to PostgreSQL and to Event Hubs, and which user-assigned
    # managed identity it is (its client id; unset: the platform's default identity).
    database_auth: DatabaseAuth = DatabaseAuth.PASSWORD
    kafka_auth: KafkaAuth = KafkaAuth.PLAINTEXT
    azure_client_id: str | None = None

    @property
    def topics(self) -> tuple[str, str]:
        return (self.topic_ledger, self.topic_orders)

    @field_validator("database_url", "read_database_url", "migration_database_url")
    @classmethod
    def _a_postgresql_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            check_database_url(value.get_secret_value())
        return value


def check_database_url(url: str) -> None:
    """Refuse what no retry can make work (SQLAlchemy's spelling, a port that is not a number),
    saying why without repeating the URL: it may hold a password."""
    scheme = url.split("://", 1)[0] if "://" in url else None
    if scheme is not None and scheme not in ("postgresql", "postgres"):
        raise ValueError(f"the scheme {scheme!r} is not libpq's: write postgresql://… (SQLAlchemy's"
                         " 'postgresql+psycopg://' is not a PostgreSQL connection URL)")
    try:
        fields = conninfo_to_dict(url)
    except ProgrammingError:
        raise ValueError("not a PostgreSQL connection URL (postgresql://…) or key=value string") from None
    for port in str(fields.get("port") or "").split(","):
        if port and not (port.isdigit() and 0 < int(port) < 65536):
            raise ValueError(f"the port {port!r} is not a number from 1 to 65535")


def load_settings() -> Settings:
    """Read the environment once; only entry points call this. A bad setting is a
    ConfigurationError of one line naming the variable (never the value of a secret)."""
    try:
        return Settings()
    except ValidationError as exc:
        raise ConfigurationError("; ".join(_setting_error(e) for e in exc.errors())) from None


_SECRET_FIELDS = frozenset(name for name, f in Settings.model_fields.items() if "SecretStr" in str(f.annotation))


def _setting_error(error: Any) -> str:
    name = str(error["loc"][0]) if error["loc"] else ""
    message = str(error["msg"]).removeprefix("Value error, ")
    variable = f"BO_{name.upper()}"
    if name in _SECRET_FIELDS or not isinstance(error.get("input"), str | int | float):
        return f"{variable}: {message}"
    return f"{variable}={error['input']!r}: {message}"
