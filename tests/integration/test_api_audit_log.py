"""`GET /admin/audit-log`: the access audit trail for auditors, and the trail's immutability."""

from __future__ import annotations

from collections.abc import Iterator

import falcon.testing
import psycopg
import pytest

from eventstore.db import open_pool
from tests.integration.helpers import api_client

ACCESSES = [
    ("alice", "GET", "/admin/tx/tx-1", "tx:tx-1", 200, "2026-03-01T10:00:00Z"),
    ("bob", "GET", "/admin/tx/tx-2", "tx:tx-2", 404, "2026-03-01T11:00:00Z"),
    ("alice", "GET", "/admin/payment-orders/ord-1/history", "payment-order:ord-1", 200, "2026-03-02T09:00:00Z"),
    ("alice", "GET", "/admin/tx/tx-1", "tx:tx-1", 200, "2026-03-03T09:00:00Z"),
]


@pytest.fixture(scope="module")
def client(admin_database_url: str, database_url: str) -> Iterator[falcon.testing.TestClient]:
    with psycopg.connect(database_url) as conn:  # the application's role may append to the trail
        for actor, method, path, resource, status, at in ACCESSES:
            conn.execute("""INSERT INTO bo.access_audit (actor, roles, method, path, resource, status, at, correlation_id)
                            VALUES (%s, '{ADMIN_READ}', %s, %s, %s, %s, %s, 'c-' || %s)""",
                         (actor, method, path, resource, status, at, actor))
    pool = open_pool(database_url)
    yield api_client(pool, cursor_secret=b"u" * 32)
    pool.close()


def test_newest_first_with_filters_by_actor_resource_and_time(client: falcon.testing.TestClient) -> None:
    everything = client.simulate_get("/admin/audit-log").json["items"]
    assert [i["at"] for i in everything] == sorted((i["at"] for i in everything), reverse=True)
    assert len(everything) == len(ACCESSES)
    alice = client.simulate_get("/admin/audit-log", params={"actor": "alice"}).json["items"]
    assert {i["actor"] for i in alice} == {"alice"} and len(alice) == 3
    tx1 = client.simulate_get("/admin/audit-log", params={"resource": "tx:tx-1"}).json["items"]
    assert [i["path"] for i in tx1] == ["/admin/tx/tx-1", "/admin/tx/tx-1"]
    day = client.simulate_get("/admin/audit-log", params={"from": "2026-03-01T00:00:00Z",
                                                          "to": "2026-03-02T00:00:00Z"}).json["items"]
    assert [i["actor"] for i in day] == ["bob", "alice"]


def test_pages_follow_the_cursor_bound_to_the_filters(client: falcon.testing.TestClient) -> None:
    first = client.simulate_get("/admin/audit-log", params={"actor": "alice", "limit": "2"}).json
    rest = client.simulate_get("/admin/audit-log", params={"actor": "alice", "cursor": first["next_cursor"]}).json
    assert len(first["items"]) == 2 and len(rest["items"]) == 1 and rest["next_cursor"] is None
    other = client.simulate_get("/admin/audit-log", params={"actor": "bob", "cursor": first["next_cursor"]})
    assert other.status_code == 400


def test_the_trail_cannot_be_changed_even_by_its_owner(database_url: str, admin_database_url: str) -> None:
    with psycopg.connect(database_url) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("UPDATE bo.access_audit SET actor = 'mallory'")
    with psycopg.connect(admin_database_url) as conn, pytest.raises(psycopg.errors.RestrictViolation):
        conn.execute("DELETE FROM bo.access_audit")
