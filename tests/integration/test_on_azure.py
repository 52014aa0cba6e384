"""bo on Azure, against local stand-ins for what Azure provides (no cloud here):

- PostgreSQL with Entra ID: a real server where a role's password is the token the managed
  identity endpoint (tests/identity.py, the Container Apps protocol) handed out; bo's own
  connections present it, and take a new one before it expires;
- Event Hubs: librdkafka asks bo's OAUTHBEARER callback for tokens of the managed identity and
  asks again before each expires (librdkafka's mock broker speaks no SASL, so the handshake
  itself cannot be made here: the tokens' source and their refresh are what is tested);
- Application Insights: the real azure-monitor exporter sends bo's spans to an ingestion
  endpoint on loopback named by the connection string.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psycopg
import pytest
from confluent_kafka import Consumer, Producer
from psycopg import sql

from bo.entra import (
    EVENT_HUBS_SCOPE,
    POSTGRES_SCOPE,
    TokenPassword,
    configure_database_auth,
    kafka_client_settings,
    managed_identity,
)
from bo.settings import Settings
from eventstore import db
from eventstore.errors import DatabaseUnavailableError, PermanentDatabaseError
from tests.conftest import REPO, free_port, login_url
from tests.identity import IdentityEndpoint

ROLE = "bo_entra_token_test"
POSTGRES_RESOURCE = POSTGRES_SCOPE.removesuffix("/.default")
EVENT_HUBS_RESOURCE = EVENT_HUBS_SCOPE.removesuffix("/.default")


@pytest.fixture
def identity(monkeypatch: pytest.MonkeyPatch) -> Iterator[IdentityEndpoint]:
    endpoint = IdentityEndpoint()
    for name, value in endpoint.environment().items():
        monkeypatch.setenv(name, value)
    yield endpoint
    endpoint.close()


@contextmanager
def password_checked_for(admin_url: str, role: str) -> Iterator[None]:
    """pg_hba asks `role` for its password (SCRAM) on every connection, local or TCP; the test
    servers trust everyone else, as before. The lines are removed again afterwards."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        row = conn.execute("SHOW hba_file").fetchone()
        assert row is not None
        hba = Path(row[0])
        before = hba.read_text()
        lines = (f"local all {role} scram-sha-256\nhost all {role} 127.0.0.1/32 scram-sha-256\n"
                 f"host all {role} ::1/128 scram-sha-256\n")
        hba.write_text(lines + before)
        conn.execute("SELECT pg_reload_conf()")
        try:
            time.sleep(0.3)  # the postmaster rereads the file on the signal
            yield
        finally:
            hba.write_text(before)
            conn.execute("SELECT pg_reload_conf()")


@pytest.fixture
def token_role(admin_database_url: str) -> Iterator[str]:
    """A login role whose password is whatever the test sets (the token of the moment); its URL."""
    with psycopg.connect(admin_database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(ROLE)))
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'not-yet'").format(sql.Identifier(ROLE)))
    url = login_url(admin_database_url, ROLE)
    with password_checked_for(admin_database_url, ROLE):
        yield url
    with psycopg.connect(admin_database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(ROLE)))


def set_password(admin_url: str, password: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(ROLE), sql.Literal(password)))


def whoami(url: str) -> str:
    with db.connect(url) as conn:
        row = conn.execute("SELECT current_user").fetchone()
    return str(row[0]) if row else ""


@pytest.fixture
def token_passwords() -> Iterator[None]:
    yield
    db.use_password_source(None)


def test_without_the_token_the_role_is_refused(token_role: str) -> None:
    with pytest.raises(PermanentDatabaseError):
        whoami(token_role)


def test_each_new_connection_presents_a_token_still_good_and_takes_a_new_one_before_expiry(
        admin_database_url: str, token_role: str, identity: IdentityEndpoint, token_passwords: None) -> None:
    identity.lifetime_s = 6.0
    password = TokenPassword(managed_identity("bo-projector-client"), margin_s=3.0)
    db.use_password_source(password)
    set_password(admin_database_url, "token-1")

    assert whoami(token_role) == ROLE
    assert whoami(token_role) == ROLE  # the same token, still good for more than the margin
    assert identity.tokens_for(POSTGRES_RESOURCE) == ["token-1"]

    set_password(admin_database_url, "token-2")  # what Entra ID accepts once token-1 is old
    time.sleep(3.2)  # token-1 is now within the margin of its expiry
    assert whoami(token_role) == ROLE
    assert identity.tokens_for(POSTGRES_RESOURCE) == ["token-1", "token-2"]
    assert identity.issued[-1][2] == "bo-projector-client"

    pool = db.open_pool(token_role, min_size=1, max_size=1, name="entra-test")
    try:
        with pool.connection(timeout=10) as conn:
            row = conn.execute("SELECT current_user").fetchone()
        assert row is not None and row[0] == ROLE
    finally:
        pool.close()
    assert "token-2" not in repr(password)


def test_a_failing_identity_endpoint_is_an_outage_to_wait_out_and_no_identity_a_misconfiguration(
        token_role: str, identity: IdentityEndpoint, token_passwords: None, monkeypatch: pytest.MonkeyPatch) -> None:
    db.use_password_source(TokenPassword(managed_identity("bo-ingest-client")))
    identity.failing = True
    with pytest.raises(DatabaseUnavailableError):
        whoami(token_role)
    identity.failing = False
    for name in identity.environment():
        monkeypatch.delenv(name)
    monkeypatch.delenv("MSI_ENDPOINT", raising=False)
    db.use_password_source(TokenPassword(managed_identity("bo-ingest-client")))
    with pytest.raises(PermanentDatabaseError, match="no managed identity here"):
        whoami(token_role)


def test_bo_database_auth_entra_makes_every_connection_of_the_process_use_the_identity(
        admin_database_url: str, token_role: str, identity: IdentityEndpoint, token_passwords: None) -> None:
    set_password(admin_database_url, "token-1")
    configure_database_auth(Settings(database_auth="entra", azure_client_id="bo-api-client"))
    assert whoami(token_role) == ROLE
    assert identity.issued == [("token-1", POSTGRES_RESOURCE, "bo-api-client")]


def test_the_default_settings_leave_passwords_to_the_url(token_passwords: None) -> None:
    configure_database_auth(Settings())
    assert db.connection_kwargs(connect_timeout=5) == {"connect_timeout": 5}


def test_event_hubs_clients_take_the_identity_s_tokens_and_librdkafka_asks_again_before_expiry(
        identity: IdentityEndpoint) -> None:
    identity.lifetime_s = 3.0
    settings = Settings(kafka_auth="entra", azure_client_id="bo-ingest-client")
    config = kafka_client_settings(settings, producer=False)
    assert config["security.protocol"] == "SASL_SSL" and config["sasl.mechanisms"] == "OAUTHBEARER"
    consumer = Consumer({"bootstrap.servers": f"127.0.0.1:{free_port()}", "group.id": "bo-ingest", "log_level": 0,
                         **config})
    try:
        deadline = time.monotonic() + 15
        while len(identity.tokens_for(EVENT_HUBS_RESOURCE)) < 2 and time.monotonic() < deadline:
            consumer.poll(0.2)
    finally:
        consumer.close()
    issued = [i for i in identity.issued if i[1] == EVENT_HUBS_RESOURCE]
    assert len(issued) >= 2, "librdkafka did not ask for a new token before the first expired"
    assert {client for _, _, client in issued} == {"bo-ingest-client"}

    producer = Producer({"bootstrap.servers": f"127.0.0.1:{free_port()}", "log_level": 0,
                         **kafka_client_settings(settings, producer=True)})
    before = len(identity.tokens_for(EVENT_HUBS_RESOURCE))
    deadline = time.monotonic() + 10
    while len(identity.tokens_for(EVENT_HUBS_RESOURCE)) == before and time.monotonic() < deadline:
        producer.poll(0.2)
    assert len(identity.tokens_for(EVENT_HUBS_RESOURCE)) > before
    assert kafka_client_settings(Settings(), producer=True) == {}


class Ingestion:
    """An Application Insights ingestion endpoint on loopback: keeps what is posted to it."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        ingestion = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                ingestion.bodies.append(body)
                items = max(1, body.count(b"\n") + 1)
                answer = json.dumps({"itemsReceived": items, "itemsAccepted": items, "errors": []}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


SEND_ONE_SPAN = """
from opentelemetry import trace
from telemetry.tracing import configure_tracing
assert configure_tracing("ingest")
with trace.get_tracer("bo.test").start_as_current_span("bo-app-insights-probe"):
    pass
assert trace.get_tracer_provider().force_flush(20_000)
"""


def test_spans_reach_application_insights_through_the_azure_monitor_exporter(tmp_path: Path) -> None:
    ingestion = Ingestion()
    try:
        env = {**os.environ, "OTEL_TRACES_EXPORTER": "azure_monitor", "OTEL_SERVICE_NAME": "bo-ingest",
               "APPLICATIONINSIGHTS_CONNECTION_STRING":
                   f"InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint={ingestion.url}",
               "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true", "TMPDIR": str(tmp_path)}
        subprocess.run([sys.executable, "-c", SEND_ONE_SPAN], env=env, cwd=REPO, check=True, timeout=60)
    finally:
        ingestion.close()
    assert any(b"bo-app-insights-probe" in body for body in ingestion.bodies), ingestion.bodies[:2]


def test_the_azure_monitor_exporter_without_its_connection_string_is_refused_at_start(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "APPLICATIONINSIGHTS_CONNECTION_STRING"}
    env.update({"OTEL_TRACES_EXPORTER": "azure_monitor", "BO_HOME": str(tmp_path),
                "BO_DATABASE_URL": f"postgresql://nobody@127.0.0.1:{free_port()}/bo"})
    done = subprocess.run([sys.executable, "-m", "bo", "project"], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "APPLICATIONINSIGHTS_CONNECTION_STRING" in done.stderr
