"""Entra ID tokens for bo's connections on Azure: PostgreSQL's password and Event Hubs' OAUTHBEARER.

On Azure, no bo process holds a database password or an Event Hubs key. Each runs under a
managed identity (deploy/azure) and presents a token of that identity instead:

- **PostgreSQL** (`BO_DATABASE_AUTH=entra`): the token is the password of a connection, for
  the scope of Azure Database for PostgreSQL. A token lives about an hour and is checked
  only when a connection opens, so each new connection takes a token that is still good
  for at least `margin_s`, fetched anew when the one held is older than that
  (`TokenPassword`). eventstore/db.py asks for it at every connection it opens.
- **Event Hubs' Kafka endpoint** (`BO_KAFKA_AUTH=entra`): SASL_SSL with OAUTHBEARER, the
  token handed to librdkafka by `oauth_cb`, which librdkafka calls again before the token
  expires. With it, the timeouts and limits Event Hubs asks of Kafka clients
  (`event_hubs_settings`).

The credential is azure-identity's `ManagedIdentityCredential`: in Container Apps it asks the
platform's identity endpoint (`IDENTITY_ENDPOINT`, `IDENTITY_HEADER`), for the user-assigned
identity named by `AZURE_CLIENT_ID`. Tokens are never logged.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any, Final, Protocol

from bo.settings import DatabaseAuth, KafkaAuth, Settings
from eventstore.db import use_password_source
from eventstore.errors import DatabaseUnavailableError, PermanentDatabaseError

POSTGRES_SCOPE: Final = "https://ossrdbms-aad.database.windows.net/.default"
EVENT_HUBS_SCOPE: Final = "https://eventhubs.azure.net/.default"
# A token handed out is still good for at least this long (a connection opening, a rebalance).
DEFAULT_MARGIN_S: Final = 300.0


class AccessTokenLike(Protocol):
    token: str
    expires_on: int


class TokenCredential(Protocol):
    """What azure-identity's credentials offer (azure.core.credentials.TokenCredential)."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessTokenLike: ...


def managed_identity(client_id: str | None = None) -> TokenCredential:
    """The process's managed identity: the user-assigned one named by `client_id`, else the
    platform's default (`AZURE_CLIENT_ID` is read by azure-identity itself)."""
    from azure.identity import ManagedIdentityCredential

    credential: TokenCredential = ManagedIdentityCredential(client_id=client_id) if client_id \
        else ManagedIdentityCredential()
    return credential


class TokenPassword:
    """A callable answering a token for `scope` that stays valid for at least `margin_s`.

    The token is kept and handed out again until it comes within `margin_s` of its expiry;
    then the credential is asked for a new one. Thread-safe: the pool's threads and the
    process's own connections share one.
    """

    def __init__(self, credential: TokenCredential, scope: str = POSTGRES_SCOPE, *,
                 margin_s: float = DEFAULT_MARGIN_S, clock: Callable[[], float] = time.time) -> None:
        self._credential = credential
        self._scope = scope
        self._margin_s = margin_s
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_on = 0.0
        self.fetches = 0

    def __call__(self) -> str:
        with self._lock:
            if self._token is None or self._clock() >= self._expires_on - self._margin_s:
                access = _fetched(self._credential, self._scope)
                self._token, self._expires_on = access.token, float(access.expires_on)
                self.fetches += 1
            return self._token

    def __repr__(self) -> str:  # never the token itself
        return f"TokenPassword(scope={self._scope!r}, expires_on={self._expires_on:.0f})"


def _fetched(credential: TokenCredential, scope: str) -> AccessTokenLike:
    """A token, or the database error that says whether waiting may help: the identity endpoint
    failing or unreachable (as just after a container starts) is transient, like a database
    restart; a process with no identity endpoint at all (Container Apps and App Service set
    IDENTITY_ENDPOINT) is misconfigured, and that is permanent."""
    from azure.core.exceptions import AzureError
    from azure.identity import CredentialUnavailableError

    try:
        return credential.get_token(scope)
    except CredentialUnavailableError as exc:
        if not (os.environ.get("IDENTITY_ENDPOINT") or os.environ.get("MSI_ENDPOINT")):
            raise PermanentDatabaseError(
                f"no managed identity here for the database's token ({_first_line(exc)}): run where an identity is"
                " assigned, or set BO_DATABASE_AUTH=password") from exc
        raise DatabaseUnavailableError(f"the database's token could not be had: {_first_line(exc)}") from exc
    except AzureError as exc:
        raise DatabaseUnavailableError(f"the database's token could not be had: {_first_line(exc)}") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def oauth_cb(credential: TokenCredential, scope: str = EVENT_HUBS_SCOPE) -> Callable[[str], tuple[str, float]]:
    """librdkafka's OAUTHBEARER token refresh callback: (token, expiry in epoch seconds)."""

    def refresh(_config: str) -> tuple[str, float]:
        access = credential.get_token(scope)
        return access.token, float(access.expires_on)

    return refresh


def event_hubs_settings(credential: TokenCredential, *, producer: bool) -> dict[str, Any]:
    """What a Kafka client of Event Hubs needs on top of bo's own settings: OAUTHBEARER over
    TLS with the managed identity's token, and the service's limits. Event Hubs closes
    connections idle for 240 s and takes messages of at most 1 MB; its consumers' session
    timeout is BO_KAFKA_SESSION_TIMEOUT_MS (deploy/azure sets the 30 s Event Hubs advises)."""
    common: dict[str, Any] = {
        "security.protocol": "SASL_SSL",
        # The wheel's librdkafka has its own OpenSSL: find the system's CA bundle explicitly.
        "ssl.ca.location": "probe",
        "sasl.mechanisms": "OAUTHBEARER",
        "oauth_cb": oauth_cb(credential),
        "socket.keepalive.enable": True,
        "metadata.max.age.ms": 180_000,
        "connections.max.idle.ms": 180_000,
        "message.max.bytes": 1_000_000,
    }
    if producer:
        return {**common, "request.timeout.ms": 60_000, "delivery.timeout.ms": 120_000}
    return {**common, "max.partition.fetch.bytes": 1_000_000}


def kafka_client_settings(settings: Settings, *, producer: bool) -> dict[str, Any]:
    """The librdkafka settings `settings` ask for beyond bo's own (none on plaintext)."""
    if settings.kafka_auth is KafkaAuth.PLAINTEXT:
        return {}
    return event_hubs_settings(managed_identity(settings.azure_client_id), producer=producer)


def configure_database_auth(settings: Settings) -> None:
    """With BO_DATABASE_AUTH=entra, every connection this process opens presents a fresh token."""
    if settings.database_auth is DatabaseAuth.ENTRA:
        use_password_source(TokenPassword(managed_identity(settings.azure_client_id)))
