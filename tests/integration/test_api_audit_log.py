"""The access audit trail: one row per `/admin/*` request, allowed or not, written before the
answer leaves (or a 503), chained, append-only, and readable by auditors with filters."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import falcon.testing
import psycopg
import pytest

from api.app import AppDeps, create_app
from api.audit import client_ip, redacted_query, trusted_networks
from api.audit_log import verify_trail
from bo.migrate import schema_expectation
from bo.serve import proxies
from bo.settings import ConfigurationError, Settings
from eventstore.db import open_pool
from tests.conftest import SAMPLES
from tests.integration.helpers import append_all, bearer, dev_issuer, runner, sample_records


@pytest.fixture(scope="module")
def app(database_url: str) -> Iterator[falcon.App[falcon.Request, falcon.Response]]:
    append_all(database_url, sample_records(SAMPLES))
    runner(database_url).catch_up()
    pool = open_pool(database_url)
    yield create_app(AppDeps(pool=pool, authenticator=dev_issuer()[1], cursor_secret=b"u" * 32,
                             schema=schema_expectation(), trusted_proxies=trusted_networks("10.0.0.0/8")))
    pool.close()


@pytest.fixture(scope="module")
def client(app: falcon.App[falcon.Request, falcon.Response]) -> falcon.testing.TestClient:
    return falcon.testing.TestClient(app)


def audit_rows(url: str, after: int) -> list[dict[str, Any]]:
    with psycopg.connect(url, row_factory=psycopg.rows.dict_row) as conn:
        return conn.execute("SELECT * FROM bo.audit_log WHERE id > %s ORDER BY id", (after,)).fetchall()


def last_id(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT coalesce(max(id), 0) FROM bo.audit_log").fetchone()
    return int(row[0]) if row else 0


def test_every_admin_request_writes_exactly_one_row_with_who_what_and_the_result(
        client: falcon.testing.TestClient, admin_database_url: str) -> None:
    before = last_id(admin_database_url)
    auditor = bearer("ADMIN_READ", "ADMIN_AUDIT", subject="alice")
    reader = bearer("ADMIN_READ", subject="bob")
    answers = [
        client.simulate_get("/admin/tx/tx-1d", headers={**auditor, "User-Agent": "curl/8", "X-Correlation-ID": "c-1",
                                                        "traceparent": f"00-{'a' * 32}-{'b' * 16}-01"}),
        client.simulate_get("/admin/tx/nope", headers=reader),
        client.simulate_get("/admin/tx/tx-1c/history", headers=reader),
        client.simulate_get("/admin/tx/tx-1d", headers={"Authorization": "Bearer forged.token.here"}),
        client.simulate_get("/admin/projections"),
        client.simulate_get("/admin/wallets/w-payer/tx", params={"limit": "x"}, headers=reader),
        client.simulate_get("/admin/payment-orders/ord-1/history", params={"unmask": "true", "access_token": "s3cr3t"},
                            headers=auditor),
        client.simulate_get("/healthz"),  # not an admin route: not audited
    ]
    assert [a.status_code for a in answers] == [200, 404, 403, 401, 401, 400, 200, 200]
    rows = audit_rows(admin_database_url, before)
    assert [(r["subject"], r["status"], r["result"]) for r in rows] == [
        ("alice", 200, "ALLOWED"), ("bob", 404, "NOT_FOUND"), ("bob", 403, "DENIED"), (None, 401, "DENIED"),
        (None, 401, "DENIED"), ("bob", 400, "ERROR"), ("alice", 200, "ALLOWED")]
    first = rows[0]
    assert (first["method"], first["route"], first["path"], first["resource"]) == (
        "GET", "/admin/tx/{tx_id}", "/admin/tx/tx-1d", "tx:tx-1d")
    assert (first["user_agent"], first["correlation_id"], first["trace_id"]) == ("curl/8", "c-1", "a" * 32)
    assert first["issuer"] == "urn:bo:dev-issuer" and first["token_id"] and first["roles"] == ["ADMIN_AUDIT",
                                                                                              "ADMIN_READ"]
    assert rows[3]["route"] is None or rows[3]["route"] == "/admin/tx/{tx_id}"
    last = rows[-1]
    assert last["unmask"] is True and last["resource"] == "payment-order:ord-1"
    assert "s3cr3t" not in (last["query"] or "") and "access_token=%5Bremoved%5D" in last["query"]
    assert len({r["row_hash"] for r in rows}) == len(rows)


def test_reading_the_trail_is_audited_and_filters_by_actor_resource_and_time(
        client: falcon.testing.TestClient, admin_database_url: str) -> None:
    auditor = bearer("ADMIN_AUDIT", subject="carol")
    for path in ("/admin/tx/tx-1d", "/admin/tx/tx-1c"):
        client.simulate_get(path, headers=bearer("ADMIN_READ", subject="dave"))
    page = client.simulate_get("/admin/audit-log", params={"actor": "dave"}, headers=auditor).json["items"]
    assert [i["path"] for i in page][:2] == ["/admin/tx/tx-1c", "/admin/tx/tx-1d"]  # newest first
    assert {i["actor"] for i in page} == {"dave"}
    by_resource = client.simulate_get("/admin/audit-log", params={"resource": "tx:tx-1c", "actor": "dave"},
                                      headers=auditor).json["items"]
    assert len(by_resource) == 1
    newest = client.simulate_get("/admin/audit-log", params={"limit": "1"}, headers=auditor).json["items"][0]
    assert (newest["actor"], newest["path"], newest["result"]) == ("carol", "/admin/audit-log", "ALLOWED")
    window = client.simulate_get("/admin/audit-log", params={"from": page[1]["at"], "to": page[0]["at"],
                                                             "actor": "dave"}, headers=auditor).json["items"]
    assert [i["path"] for i in window] == ["/admin/tx/tx-1d"]


def test_pages_follow_the_cursor_bound_to_the_filters(client: falcon.testing.TestClient) -> None:
    auditor = bearer("ADMIN_AUDIT", subject="erin")
    for _ in range(3):
        client.simulate_get("/admin/tx/tx-1d", headers=bearer("ADMIN_READ", subject="frank"))
    first = client.simulate_get("/admin/audit-log", params={"actor": "frank", "limit": "2"}, headers=auditor).json
    rest = client.simulate_get("/admin/audit-log", params={"actor": "frank", "cursor": first["next_cursor"]},
                               headers=auditor).json
    assert len(first["items"]) == 2 and len(rest["items"]) == 1 and rest["next_cursor"] is None
    other = client.simulate_get("/admin/audit-log", params={"actor": "bob", "cursor": first["next_cursor"]},
                                headers=auditor)
    assert other.status_code == 400


def test_no_answer_leaves_unaudited_when_the_row_cannot_be_written(
        client: falcon.testing.TestClient, admin_database_url: str) -> None:
    with psycopg.connect(admin_database_url) as conn:
        conn.execute("REVOKE INSERT ON bo.audit_log FROM bo_app")
    try:
        for headers in (bearer("ADMIN_READ"), {}):
            result = client.simulate_get("/admin/tx/tx-1d", headers=headers)
            assert result.status_code == 503 and result.headers["content-type"] == "application/problem+json"
            assert "wallet_id" not in result.text and result.headers["retry-after"]
            assert result.json["instance"] == "/admin/tx/tx-1d"  # the request's own path: it tells nothing new
            assert result.json["detail"].startswith("the audit trail does not accept rows now")
        ready = client.simulate_get("/readyz")
        assert ready.status_code == 503 and ready.headers["retry-after"] == "5"
        assert ready.json["detail"] == ("audit rows cannot be written: the API's role may not append to the"
                                        " audit trail (SQLSTATE 42501)")
    finally:
        with psycopg.connect(admin_database_url) as conn:
            conn.execute("GRANT INSERT ON bo.audit_log TO bo_app")
    assert client.simulate_get("/admin/tx/tx-1d", headers=bearer("ADMIN_READ")).status_code == 200
    assert client.simulate_get("/readyz").json["audit_trail"] == "writable"


def test_readiness_fails_while_the_audit_trail_is_locked(client: falcon.testing.TestClient,
                                                         admin_database_url: str) -> None:
    with psycopg.connect(admin_database_url) as conn:
        conn.execute("LOCK TABLE bo.audit_log IN ACCESS EXCLUSIVE MODE")
        ready = client.simulate_get("/readyz")
    assert ready.status_code == 503
    assert ready.json["detail"] == "audit rows cannot be written: the audit trail is locked by another session" \
                                   " (SQLSTATE 55P03)"
    assert client.simulate_get("/readyz").status_code == 200


def test_the_app_cannot_choose_the_id_time_or_hash_of_a_row(database_url: str, admin_database_url: str) -> None:
    before = last_id(admin_database_url)
    with psycopg.connect(database_url) as conn:
        conn.execute("""INSERT INTO bo.audit_log (id, at, row_hash, subject, method, path, status, result)
                        VALUES (1, '2000-01-01', '\\x00', 'mallory', 'GET', '/admin/x', 200, 'ALLOWED')""")
    row = audit_rows(admin_database_url, before)[-1]
    assert row["id"] > before and row["at"].year > 2000 and bytes(row["row_hash"]) != b"\x00"


def test_the_trail_cannot_be_changed_even_by_its_owner(database_url: str, admin_database_url: str) -> None:
    with psycopg.connect(database_url) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("UPDATE bo.audit_log SET subject = 'mallory'")
    with psycopg.connect(admin_database_url) as conn, pytest.raises(psycopg.errors.RestrictViolation):
        conn.execute("DELETE FROM bo.audit_log")
    with psycopg.connect(admin_database_url) as conn, pytest.raises(psycopg.errors.RestrictViolation):
        conn.execute("TRUNCATE bo.audit_log")


@pytest.mark.parametrize(("remote", "forwarded", "expected"), [
    ("203.0.113.9", None, "203.0.113.9"),
    ("203.0.113.9", "198.51.100.1", "203.0.113.9"),  # not from a trusted proxy: the header is ignored
    ("10.0.0.5", "198.51.100.1", "198.51.100.1"),
    ("10.0.0.5", "6.6.6.6, 198.51.100.1, 10.0.0.7", "198.51.100.1"),  # the nearest untrusted hop
    ("10.0.0.5", "garbage, 10.0.0.7", "10.0.0.7"),
])
def test_the_client_ip_honours_x_forwarded_for_only_from_trusted_proxies(
        remote: str, forwarded: str | None, expected: str) -> None:
    assert client_ip(remote, forwarded, trusted_networks("10.0.0.0/8")) == expected


def test_secret_looking_query_values_are_removed() -> None:
    assert redacted_query("limit=2&access_token=abc&api_key=k&cursor=c1") == (
        "limit=2&access_token=%5Bremoved%5D&api_key=%5Bremoved%5D&cursor=c1")
    assert redacted_query("") is None


def test_bo_log_verify_checks_the_trail_and_names_the_first_row_a_superuser_edited(
        client: falcon.testing.TestClient, database_url: str, admin_database_url: str) -> None:
    for _ in range(3):
        client.simulate_get("/admin/tx/tx-1d", headers=bearer("ADMIN_READ", subject="gina"))
    with psycopg.connect(database_url) as conn:
        assert verify_trail(conn).ok
    with psycopg.connect(admin_database_url) as conn:
        victim = conn.execute("SELECT min(id) FROM bo.audit_log WHERE subject = 'gina'").fetchone()
        assert victim is not None
        conn.execute("ALTER TABLE bo.audit_log DISABLE TRIGGER audit_log_append_only")
        conn.execute("UPDATE bo.audit_log SET subject = 'someone-else' WHERE id = %s", victim)
        conn.execute("ALTER TABLE bo.audit_log ENABLE TRIGGER audit_log_append_only")
    try:
        with psycopg.connect(database_url) as conn:
            report = verify_trail(conn)
        assert not report.ok and report.broken_id == victim[0]
    finally:
        with psycopg.connect(admin_database_url) as conn:
            conn.execute("ALTER TABLE bo.audit_log DISABLE TRIGGER audit_log_append_only")
            conn.execute("UPDATE bo.audit_log SET subject = 'gina' WHERE id = %s", victim)
            conn.execute("ALTER TABLE bo.audit_log ENABLE TRIGGER audit_log_append_only")
    with psycopg.connect(database_url) as conn:
        assert verify_trail(conn).ok


def test_a_disabled_trigger_or_a_granted_update_is_reported(database_url: str, admin_database_url: str) -> None:
    with psycopg.connect(admin_database_url) as conn:
        conn.execute("ALTER TABLE bo.audit_log DISABLE TRIGGER audit_log_no_truncate")
        conn.execute("GRANT UPDATE ON bo.audit_log TO bo_app")
    try:
        with psycopg.connect(database_url) as conn:
            problems = verify_trail(conn).problems
        assert any("audit_log_no_truncate is missing or disabled" in p for p in problems)
        assert any("can change bo.audit_log: it holds UPDATE" in p for p in problems)
    finally:
        with psycopg.connect(admin_database_url) as conn:
            conn.execute("ALTER TABLE bo.audit_log ENABLE TRIGGER audit_log_no_truncate")
            conn.execute("REVOKE UPDATE ON bo.audit_log FROM bo_app")


def test_unmask_is_for_auditors_only_and_is_audited_as_such(
        client: falcon.testing.TestClient, admin_database_url: str) -> None:
    path = "/admin/payment-orders/ord-1/history"
    auditor = bearer("ADMIN_AUDIT", subject="hana")
    masked = client.simulate_get(path, headers=auditor).json["items"]
    shown = client.simulate_get(path, params={"unmask": "true"}, headers=auditor).json["items"]
    emails = {i["payload"].get("payer_email") for i in masked if i["payload"]} - {None}
    plain = {i["payload"].get("payer_email") for i in shown if i["payload"]} - {None}
    assert emails and all("***" in e for e in emails)
    assert plain and not any("***" in e for e in plain)
    refused = client.simulate_get(path, params={"unmask": "true"}, headers=bearer("ADMIN_READ", subject="ivan"))
    assert refused.status_code == 403 and "@" not in refused.text
    assert client.simulate_get(path, params={"unmask": "yes"}, headers=auditor).status_code == 400
    with psycopg.connect(admin_database_url) as conn:
        rows = conn.execute("SELECT subject, unmask, result FROM bo.audit_log WHERE subject IN ('hana', 'ivan')"
                            " ORDER BY id").fetchall()
    assert rows == [("hana", False, "ALLOWED"), ("hana", True, "ALLOWED"), ("ivan", True, "DENIED"),
                    ("hana", False, "ERROR")]


def test_a_garbled_trusted_proxies_setting_is_refused_at_start_in_one_line() -> None:
    with pytest.raises(ConfigurationError, match="BO_TRUSTED_PROXIES"):
        proxies(Settings(_env_file=None, trusted_proxies="10.0.0.0/8, not-an-address"))  # type: ignore[call-arg]
    assert len(proxies(Settings(_env_file=None, trusted_proxies="10.0.0.0/8, ::1"))) == 2  # type: ignore[call-arg]
