"""Each service with its own database role (migration 0006): the whole flow works with only
what each holds, and each is refused what it does not need."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from bo.dev_issuer import DevIssuer
from bo.embedded import DevBroker, app_role_url
from bo.migrate import upgrade
from bo.publish import publish, read_messages, topic_map
from tests.conftest import SAMPLES, _create_database, _drop_database, free_port, random_ref

pytestmark = pytest.mark.e2e


@dataclass
class Roles:
    admin: str
    ingest: str
    projector: str
    api: str
    operator: str


@pytest.fixture
def roles(pg_base_url: str) -> Iterator[Roles]:
    admin = _create_database(pg_base_url)
    upgrade(admin)
    yield Roles(admin, *(app_role_url(admin, role=f"{group}_test", group=group)
                         for group in ("bo_ingest", "bo_projector", "bo_api", "bo_operator")))
    _drop_database(pg_base_url, admin)


def refused(url: str, statement: str) -> bool:
    with psycopg.connect(url) as conn:
        try:
            conn.execute(statement)
        except psycopg.errors.InsufficientPrivilege:
            return True
    return False


def test_the_flow_runs_with_a_role_per_service(roles: Roles, broker: DevBroker, tmp_path: Path) -> None:
    topics = random_ref("ledger"), random_ref("orders")
    base_env = {**os.environ, "BO_HOME": str(tmp_path), "BO_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
                "BO_TOPIC_LEDGER": topics[0], "BO_TOPIC_ORDERS": topics[1], "BO_KAFKA_GROUP_ID": random_ref("g")}
    sent = publish(broker.bootstrap, read_messages(SAMPLES, topic_map(topics)))
    port = free_port()
    logs = {name: (tmp_path / f"{name}.log").open("wb") for name in ("ingest", "project", "serve")}
    processes = [
        subprocess.Popen([sys.executable, "-m", "bo", "ingest"], env={**base_env, "BO_DATABASE_URL": roles.ingest},
                         stdout=logs["ingest"], stderr=logs["ingest"]),
        subprocess.Popen([sys.executable, "-m", "bo", "project"],
                         env={**base_env, "BO_DATABASE_URL": roles.projector},
                         stdout=logs["project"], stderr=logs["project"]),
        subprocess.Popen([sys.executable, "-m", "bo", "serve", "--bind", f"127.0.0.1:{port}", "--workers", "1"],
                         env={**base_env, "BO_DATABASE_URL": roles.api}, stdout=logs["serve"], stderr=logs["serve"]),
    ]
    token = DevIssuer(tmp_path).token(["ADMIN_READ", "ADMIN_AUDIT"], subject="auditor")
    try:
        answer = wait_for_answer(f"http://127.0.0.1:{port}/admin/tx/tx-1d", token, roles.admin, sent)
        assert answer["pairing_status"] == "COMPLETE" and answer["projection"]["version"] == 1
        operator = {**base_env, "BO_DATABASE_URL": roles.operator}
        for command in (["rebuild", "ledger_entries", "--version", "2"], ["projections", "activate", "ledger_entries",
                                                                          "2"], ["log", "verify"]):
            done = subprocess.run([sys.executable, "-m", "bo", *command], env=operator, capture_output=True,
                                  text=True, timeout=120)
            assert done.returncode == 0, (command, done.stdout, done.stderr)
        after = get(f"http://127.0.0.1:{port}/admin/tx/tx-1d", token)
        assert after["projection"]["version"] == 2 and "amount_minor" in after
        get(f"http://127.0.0.1:{port}/admin/payment-orders/ord-1/history?unmask=true", token)
        forged = token[:-8] + "AAAAAAAA"
        with pytest.raises(urllib.error.HTTPError):
            get(f"http://127.0.0.1:{port}/admin/tx/tx-1d", forged)
    finally:
        for process in processes:
            process.terminate()
        codes = [process.wait(30) for process in processes]
        for log in logs.values():
            log.close()
    assert codes == [0, 0, 0], [(tmp_path / f"{n}.log").read_text()[-2000:] for n in logs]
    printed = "".join((tmp_path / f"{name}.log").read_text() for name in logs)
    for secret in (token, forged, token.split(".")[2], "Kim Minji", "minji.kim@example.com", "010-1234-5678",
                   "110-222-333444", (tmp_path / "cursor.key").read_text().strip()):
        assert secret not in printed, "a token, a secret or personal data reached the logs"
    with psycopg.connect(roles.admin) as conn:
        audited = conn.execute("SELECT count(*) FROM bo.audit_log WHERE subject = 'auditor'").fetchone()
    assert audited is not None and audited[0] >= 2


def wait_for_answer(url: str, token: str, admin: str, sent: int, timeout: float = 90) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with psycopg.connect(admin) as conn:
            row = conn.execute("""SELECT (SELECT count(*) FROM bo.event_log),
                                         (SELECT min(notification_id) FROM bo.projection_tracking
                                           WHERE application_name <> '__migration__')""").fetchone()
        if row is not None and row[0] >= sent and row[1] is not None and row[1] >= row[0]:
            try:
                return get(url, token)
            except OSError:
                pass
        time.sleep(0.3)
    raise AssertionError("the samples were not ingested, projected and served in time")


def get(url: str, token: str) -> dict[str, object]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        body: dict[str, object] = json.load(resp)
    return body


def test_each_role_is_refused_what_its_service_does_not_need(roles: Roles) -> None:
    # The API: no cut-over, no read-side writes, no log appends, no trail changes.
    assert refused(roles.api, "UPDATE bo.projectors SET status = 'ACTIVE' WHERE version = 2")
    assert refused(roles.api, "INSERT INTO bo.event_log (position, source, value_size, row_hash)"
                              " VALUES (999, 'kafka', 0, '\\x00')")
    assert refused(roles.api, "DELETE FROM bo.ledger_entries_v1")
    assert refused(roles.api, "UPDATE bo.audit_log SET subject = 'x'")
    assert refused(roles.api, "SELECT * FROM bo.event_verdicts")  # the contract's verdicts: the projector's
    # Ingest: nothing of the projections, the verdicts included.
    assert refused(roles.ingest, "SELECT * FROM bo.event_verdicts")
    # Ingest: the log and its offsets only.
    assert refused(roles.ingest, "SELECT * FROM bo.ledger_entries_v1")
    assert refused(roles.ingest, "INSERT INTO bo.audit_log (subject, method, path, status, result)"
                                 " VALUES ('x', 'GET', '/', 200, 'ALLOWED')")
    assert refused(roles.ingest, "UPDATE bo.event_log SET raw_value = NULL")
    # Projection: reads the log, cannot append to it, cannot switch versions or audit.
    assert refused(roles.projector, "INSERT INTO bo.event_log (position, source, value_size, row_hash)"
                                    " VALUES (999, 'kafka', 0, '\\x00')")
    assert refused(roles.projector, "UPDATE bo.projectors SET status = 'RETIRED'")
    assert refused(roles.projector, "SELECT * FROM bo.audit_log")
    # Operators: switch and rebuild, but never change the log or the trail.
    assert refused(roles.operator, "UPDATE bo.event_log SET raw_value = NULL")
    assert refused(roles.operator, "TRUNCATE bo.event_log")
    assert refused(roles.operator, "DELETE FROM bo.audit_log")
