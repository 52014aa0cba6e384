"""The API while PostgreSQL stops in the middle of requests: 503 problem+json with Retry-After
(never a 500), `/readyz` says why, and the same requests answer again once it is back."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator

import falcon.testing
import pytest

from eventstore.db import open_pool
from tests.conftest import SAMPLES
from tests.faults.conftest import OwnServer
from tests.faults.harness import wait_for
from tests.integration.helpers import api_client, append_all, runner, sample_records

pytestmark = pytest.mark.faults


@pytest.fixture
def client(own_server: OwnServer) -> Iterator[falcon.testing.TestClient]:
    append_all(own_server.db.app, sample_records(SAMPLES))
    projection = runner(own_server.db.app)
    projection.catch_up()
    projection.datastore.close()
    pool = open_pool(own_server.db.app, max_size=2)
    yield api_client(pool, cursor_secret=b"o" * 32)
    pool.close()


class Requests(threading.Thread):
    """Look-ups in a loop, as clients would keep sending them, counting the answers."""

    def __init__(self, client: falcon.testing.TestClient) -> None:
        super().__init__(daemon=True)
        self.client, self.statuses, self.problems = client, Counter[int](), []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            result = self.client.simulate_get("/admin/tx/tx-1c")
            self.statuses[result.status_code] += 1
            if result.status_code != 200:
                self.problems.append(result)
            time.sleep(0.01)


def test_requests_during_a_database_outage_are_503_with_retry_after_and_recover(
        own_server: OwnServer, client: falcon.testing.TestClient) -> None:
    assert client.simulate_get("/readyz").status_code == 200
    assert "bo_database_up 1.0" in client.simulate_get("/metrics", headers={"Accept": "text/plain"}).text
    requests = Requests(client)
    requests.start()
    wait_for(lambda: requests.statuses[200] >= 20, 30, "answers before the outage")

    own_server.stop()
    wait_for(lambda: requests.statuses[503] >= 5, 30, "503s during the outage")
    ready = client.simulate_get("/readyz")
    assert ready.status_code == 503 and ready.headers["content-type"] == "application/problem+json"
    assert ready.json["detail"] == "the database is unavailable"
    metrics = client.simulate_get("/metrics", headers={"Accept": "text/plain"})
    assert metrics.status_code == 200 and "bo_database_up 0.0" in metrics.text  # the scrape still answers
    own_server.start()

    answered = requests.statuses[200]
    wait_for(lambda: requests.statuses[200] >= answered + 20, 60, "answers after the database is back")
    requests.done.set()
    requests.join(10)
    assert set(requests.statuses) == {200, 503}, requests.statuses
    for problem in requests.problems:
        assert problem.headers["content-type"] == "application/problem+json"
        assert problem.headers["retry-after"] == "5"
        assert problem.json["status"] == 503 and problem.json["detail"] in (
            "the database is unavailable; retry shortly",
            "the database is unavailable, so the access could not be audited and is not answered; retry shortly")
        assert problem.json["instance"].startswith("/admin/")
    assert client.simulate_get("/readyz").status_code == 200
    assert "bo_database_up 1.0" in client.simulate_get("/metrics", headers={"Accept": "text/plain"}).text
