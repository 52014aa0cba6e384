"""End to end with real processes: samples → broker → `bo ingest` → `bo project` → gunicorn → HTTP.

Every row of samples/README.md is asserted through the HTTP API (dead letters through
their table). The test waits on projector positions, never on sleeps.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from bo.embedded import DevBroker
from bo.publish import publish, read_messages, topic_map
from tests.conftest import SAMPLES, free_port, random_ref
from tests.fates import fates_by_event_id
from tests.stack import bo, dev_token, wait_until_projected

pytestmark = pytest.mark.e2e


@dataclass
class Stack:
    url: str
    base: str
    topics: tuple[str, str]
    token: str  # ADMIN_READ and ADMIN_AUDIT
    reader_token: str  # ADMIN_READ only


def wait_ready(base: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if get(base, "/readyz")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError("the API did not become ready")


def get(base: str, path: str, token: str | None = None) -> tuple[int, dict[str, Any], str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(base + path, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, json.load(resp), resp.headers.get("Content-Type", "")
    except urllib.error.HTTPError as err:
        return err.code, json.load(err), err.headers.get("Content-Type", "")


@pytest.fixture(scope="module")
def stack(database_url: str, broker: DevBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    topics = (random_ref("ledger"), random_ref("orders"))
    logs = tmp_path_factory.mktemp("logs")
    env = {
        **os.environ, "BO_DATABASE_URL": database_url, "BO_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
        "BO_TOPIC_LEDGER": topics[0], "BO_TOPIC_ORDERS": topics[1],
        "BO_KAFKA_GROUP_ID": random_ref("group"), "BO_HOME": str(logs / "home"),
        "BO_KAFKA_SESSION_TIMEOUT_MS": "6000", "BO_ENV": "local",
    }
    sent = publish(broker.bootstrap, read_messages(SAMPLES, topic_map(topics)))
    port = free_port()
    processes = [
        bo(["ingest"], env, logs / "ingest.log"),
        bo(["project"], env, logs / "project.log"),
        bo(["serve", "--bind", f"127.0.0.1:{port}", "--workers", "2"], env, logs / "serve.log"),
    ]
    try:
        wait_until_projected(database_url, sent)
        wait_ready(f"http://127.0.0.1:{port}")
        yield Stack(database_url, f"http://127.0.0.1:{port}", topics, dev_token(env, "ADMIN_READ", "ADMIN_AUDIT"),
                    dev_token(env, "ADMIN_READ"))
    finally:
        for process in processes:
            process.terminate()
        codes = [process.wait(20) for process in processes]
        for name in ("ingest", "project", "serve"):
            sys.stderr.write((logs / f"{name}.log").read_text()[-3000:])
    assert codes == [0, 0, 0], "every process stops cleanly on SIGTERM"


def tx(stack: Stack, tx_id: str) -> dict[str, Any]:
    status, body, _ = get(stack.base, f"/admin/tx/{tx_id}", stack.token)
    assert status == 200, body
    return body


def order(stack: Stack, order_id: str) -> dict[str, Any]:
    status, body, _ = get(stack.base, f"/admin/payment-orders/{order_id}", stack.token)
    assert status == 200, body
    return body


def test_complete_payment_with_stale_versions_arriving_late(stack: Stack) -> None:
    debit = tx(stack, "tx-1d")
    assert (debit["status"], debit["version"], debit["status_group"]) == ("POSTED", 2, "SUCCESS")
    assert (debit["pairing_status"], debit["paired_tx_id"], debit["missing"]) == ("COMPLETE", "tx-1c", [])
    assert debit["amount"] == "12500.00" and debit["currency"] == "KRW"
    assert debit["source"]["topic"] == stack.topics[0]
    assert set(debit["source"]) == {"position", "topic", "partition", "offset"}
    assert debit["projection"] == {"name": "ledger_entries", "version": 1}
    assert debit["data_lag_sec"] == 0
    assert tx(stack, "tx-1c")["paired_tx_id"] == "tx-1d"
    body = order(stack, "ord-1")
    assert (body["order"]["status"], body["order"]["version"]) == ("PAID", 3)
    assert body["pair"]["pairing_status"] == "COMPLETE" and body["pair"]["completed_at"] is not None
    assert sorted(e["tx_id"] for e in body["ledger_entries"]) == ["tx-1c", "tx-1d"]


def test_personal_data_is_masked(stack: Stack) -> None:
    placed = order(stack, "ord-1")["order"]
    assert (placed["payer_name"], placed["payer_email"], placed["payer_phone"], placed["account_number"]) == (
        "K***", "m***@e***.com", "***-****-5678", "***-****-3444")


def test_partial_pair(stack: Stack) -> None:
    body = order(stack, "ord-2")
    assert body["order"] is None
    assert (body["pair"]["pairing_status"], body["pair"]["missing"]) == ("PARTIAL", ["PAYMENT_ORDER", "CREDIT"])
    leg = tx(stack, "tx-2d")
    assert (leg["pairing_status"], leg["paired_tx_id"], leg["missing"]) == (
        "PARTIAL", None, ["PAYMENT_ORDER", "CREDIT"])
    assert leg["amount"] == "3000"


def test_amount_mismatch(stack: Stack) -> None:
    assert order(stack, "ord-3")["pair"]["pairing_status"] == "MISMATCH"
    assert tx(stack, "tx-3c")["amount"] == "99.90"


def test_unpaired_entries(stack: Stack) -> None:
    fee, adj = tx(stack, "tx-fee-1"), tx(stack, "tx-adj-1")
    assert (fee["related_type"], fee["pairing_status"], fee["paired_tx_id"]) == ("UNKNOWN", "UNPAIRED", None)
    assert (adj["related_type"], adj["pairing_status"]) == ("MANUAL_ADJUSTMENT", "UNPAIRED")


def test_no_version_updated_at_decides(stack: Stack) -> None:
    assert tx(stack, "tx-nv")["status"] == "FAILED"


def test_no_version_no_updated_at_last_ingested_wins(stack: Stack) -> None:
    entry = tx(stack, "tx-nv2")
    assert (entry["status"], entry["status_group"]) == ("WEIRD_STATUS", "UNKNOWN")


def test_duplicate_and_conflicting_event_id(stack: Stack) -> None:
    credit = tx(stack, "tx-1c")
    assert (credit["wallet_id"], credit["amount"]) == ("w-merchant", "12500.00")
    with psycopg.connect(stack.url) as conn:
        logged = conn.execute("SELECT count(*) FROM bo.event_log WHERE event_id = 'e-001'").fetchone()
    assert logged == (3,)
    assert fates_by_event_id(stack.url, "ledger_entries", "e-001") == ["APPLIED", "DUPLICATE", "DEAD_LETTERED"]


def test_dead_letters_name_reason_and_field(stack: Stack) -> None:
    with psycopg.connect(stack.url) as conn:
        found = conn.execute("""
            SELECT convert_from(l.raw_key, 'UTF8'), d.reason, split_part(d.detail, ':', 1)
              FROM bo.dead_letters d JOIN bo.event_log l USING (position)
             WHERE d.projector IN ('ledger_entries', 'payment_orders')""").fetchall()
    assert sorted(found) == sorted([
        ("tx-bad-1", "INVALID_JSON", "(root)"),
        ("tx-bad-2", "SCHEMA_VIOLATION", "payload.entry_type"),
        ("tx-bad-3", "SCHEMA_VIOLATION", "payload.amount"),
        ("ord-x", "UNKNOWN_EVENT_TYPE", "event_type"),
        ("ord-y", "UNSUPPORTED_SCHEMA_VERSION", "schema_version"),
        ("tx-1c", "DUPLICATE_EVENT_ID_CONFLICT", "event_id"),
        ("ord-z", "SCHEMA_VIOLATION", "payload.currency"),
    ])


def test_unknown_ids_are_404_problem_json(stack: Stack) -> None:
    for path in ("/admin/tx/nope", "/admin/payment-orders/nope"):
        status, body, content_type = get(stack.base, path, stack.token)
        assert status == 404 and content_type == "application/problem+json"
        assert body["status"] == 404 and body["title"]


def test_wallet_pages_walk_every_entry_newest_first(stack: Stack) -> None:
    seen: list[dict[str, Any]] = []
    path: str | None = "/admin/wallets/w-payer/tx?limit=2"
    while path:
        status, body, _ = get(stack.base, path, stack.token)
        assert status == 200, body
        assert len(body["items"]) <= 2
        seen += body["items"]
        path = f"/admin/wallets/w-payer/tx?limit=2&cursor={body['next_cursor']}" if body["next_cursor"] else None
    with psycopg.connect(stack.url) as conn:
        expected = {r[0] for r in conn.execute("SELECT tx_id FROM bo.ledger_entries WHERE wallet_id = 'w-payer'")}
    assert [e["tx_id"] for e in seen] and {e["tx_id"] for e in seen} == expected
    assert len(seen) == len(expected)
    keys = [(e["created_at"], e["tx_id"]) for e in seen]
    assert keys == sorted(keys, reverse=True)


def test_wallet_filters_and_unknown_wallet(stack: Stack) -> None:
    status, body, _ = get(stack.base, "/admin/wallets/w-payer/tx?status_group=failed", stack.token)
    assert status == 200 and [e["tx_id"] for e in body["items"]] == ["tx-nv"]
    status, body, _ = get(stack.base, "/admin/wallets/nobody/tx", stack.token)
    assert (status, body["items"], body["next_cursor"]) == (200, [], None)


@pytest.mark.parametrize("query", ["limit=0", "limit=201", "limit=x", "status_group=NOPE",
                                   "from=yesterday", "cursor=forged.cursor"])
def test_bad_parameters_are_400_problem_json(stack: Stack, query: str) -> None:
    status, body, content_type = get(stack.base, f"/admin/wallets/w-payer/tx?{query}", stack.token)
    assert (status, content_type, body["status"]) == (400, "application/problem+json", 400)
    assert body["detail"].split(":")[0] == query.split("=")[0]


def test_a_cursor_from_another_wallet_is_400(stack: Stack) -> None:
    _, first, _ = get(stack.base, "/admin/wallets/w-payer/tx?limit=1", stack.token)
    status, _, _ = get(stack.base, f"/admin/wallets/w-merchant/tx?limit=1&cursor={first['next_cursor']}", stack.token)
    assert status == 400


def test_health_and_readiness(stack: Stack) -> None:
    assert get(stack.base, "/healthz", stack.token)[:2] == (200, {"status": "ok"})
    status, body, _ = get(stack.base, "/readyz", stack.token)
    assert status == 200 and body["migrations"]


def test_every_admin_route_refuses_an_anonymous_request_with_a_bearer_challenge(stack: Stack) -> None:
    for path in ("/admin/tx/tx-1d", "/admin/tx/does-not-exist", "/admin/payment-orders/ord-1",
                 "/admin/wallets/w-payer/tx", "/admin/tx/tx-1c/history", "/admin/payment-orders/ord-1/history",
                 "/admin/projections", "/admin/audit-log", "/admin/no-such-route"):
        request = urllib.request.Request(stack.base + path)
        try:
            urllib.request.urlopen(request, timeout=10)
            raise AssertionError(f"{path} answered without a token")
        except urllib.error.HTTPError as err:
            assert err.code == 401, path
            assert err.headers["Content-Type"] == "application/problem+json"
            assert err.headers["WWW-Authenticate"].startswith("Bearer")
            problem = json.load(err)  # the same answer whether or not the record or the route exists
            assert problem == {"type": "about:blank", "title": "Unauthorized", "status": 401, "instance": path,
                               "detail": "a bearer token is required"}


def test_a_reader_token_is_refused_on_auditor_routes_with_403(stack: Stack) -> None:
    assert get(stack.base, "/admin/tx/tx-1d", stack.reader_token)[0] == 200
    for path in ("/admin/tx/tx-1c/history", "/admin/tx/does-not-exist/history", "/admin/audit-log",
                 "/admin/tx/tx-1d?as_of=2026-01-01T00:00:00Z"):
        status, body, content_type = get(stack.base, path, stack.reader_token)
        assert (status, content_type) == (403, "application/problem+json"), path
        assert body["detail"] == "the ADMIN_AUDIT role is required"


def audit_rows_with_user_agent(url: str, agent: str) -> list[tuple[int, str]]:
    with psycopg.connect(url) as conn:
        return [(int(r[0]), str(r[1])) for r in conn.execute(
            "SELECT status, result FROM bo.audit_log WHERE user_agent = %s ORDER BY id", (agent,)).fetchall()]


def raw_request(base: str, path: str, headers: dict[str, str]) -> tuple[int, str, dict[str, Any]]:
    """One request over a plain socket (urllib would refuse nothing, but reads HTML badly)."""
    host, port = base.removeprefix("http://").split(":")
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", "Connection: close", *(f"{k}: {v}" for k, v in headers.items())]
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    content_type = next((h.split(":", 1)[1].strip() for h in header_lines if h.lower().startswith("content-type:")), "")
    return int(status_line.split()[1]), content_type, json.loads(body)


def test_a_token_too_long_for_the_app_reaches_it_and_is_refused_with_an_audit_row(stack: Stack) -> None:
    agent = random_ref("long-token")
    status, content_type, problem = raw_request(stack.base, "/admin/tx/tx-1d", {
        "Authorization": "Bearer " + "a" * 12_000, "User-Agent": agent})
    assert (status, content_type) == (401, "application/problem+json")
    assert problem["detail"] == "the bearer token is not valid"  # why (too long) is logged, not told
    assert audit_rows_with_user_agent(stack.url, agent) == [(401, "DENIED")]


def test_a_header_beyond_gunicorns_limit_is_refused_as_problem_json(stack: Stack) -> None:
    status, content_type, problem = raw_request(stack.base, "/admin/tx/tx-1d", {
        "Authorization": "Bearer " + "a" * 20_000})
    assert (status, content_type) == (431, "application/problem+json")
    assert problem["status"] == 431 and problem["title"] == "Request Header Fields Too Large"
    status, content_type, _ = raw_request(stack.base, "/admin/tx/tx-1d", {"Bad Header Name": "x"})
    assert (status, content_type) == (400, "application/problem+json")
