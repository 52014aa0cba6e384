"""`bo ingest`, `bo project` and `bo serve` as real processes, each scraped on its `--metrics-port`."""

from __future__ import annotations

import os
import signal
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from bo.embedded import DevBroker
from bo.publish import publish, read_messages, topic_map
from tests.conftest import SAMPLES, free_port
from tests.integration.helpers import bearer
from tests.integration.test_metrics import Samples, scrape, value
from tests.stack import Stack, bo, dev_token, running_stack, wait_for_answer, wait_until_projected

pytestmark = pytest.mark.e2e
LOOKUPS = 25


@pytest.fixture(scope="module")
def stack(database_url: str, broker: DevBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(database_url, broker, tmp_path_factory.mktemp("metrics"), workers=2) as stack:
        yield stack


def get(url: str, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return int(err.code)


def test_every_process_answers_with_its_figures(stack: Stack) -> None:
    sent = publish(stack.env["BO_KAFKA_BOOTSTRAP_SERVERS"], read_messages(SAMPLES, topic_map(stack.topics)))
    head = wait_until_projected(stack.url, sent)
    token = bearer("ADMIN_READ")  # the development issuer of this test process: not the stack's
    home_token = {"Authorization": "Bearer " + dev_token(stack.env, "ADMIN_READ")}
    assert get(stack.api + "/admin/tx/tx-1c", token) == 401  # another issuer's key
    for _ in range(LOOKUPS):
        assert get(stack.api + "/admin/tx/tx-1c", home_token) == 200

    served = scrape(stack.metrics_url("serve"))  # the master: every worker's requests, merged
    route = {"route": "/admin/tx/{tx_id}", "method": "GET"}
    assert value(served, "bo_api_requests", "bo_api_requests_total", status="200", **route) == LOOKUPS
    assert value(served, "bo_api_requests", "bo_api_requests_total", status="401", **route) == 1
    assert value(served, "bo_api_request_duration_seconds", "bo_api_request_duration_seconds_count",
                 **route) == LOOKUPS + 1
    from_a_worker = scrape(stack.api + "/metrics")  # a worker's /metrics merges the same files
    assert value(from_a_worker, "bo_api_requests", "bo_api_requests_total", status="200", **route) == LOOKUPS
    assert value(from_a_worker, "bo_projector_checkpoint", "bo_projector_checkpoint",
                 projector="ledger_entries", version="1", status="ACTIVE") == head

    ingest = wait_for(stack.metrics_url("ingest"), lambda s: lag_is_zero(s) and appended(s) == sent)
    assert appended(ingest) == sent
    # Every message appended had a Kafka timestamp: its delay to ingested_at is observed once.
    delays = sum(value(ingest, "bo_ingest_delay_seconds", "bo_ingest_delay_seconds_count", topic=topic)
                 for topic in stack.topics)
    assert delays == sent
    project = scrape(stack.metrics_url("project"))
    for name in ("ledger_entries", "payment_orders", "payment_ledger_pairs"):
        labels = {"projector": name, "version": "1"}
        assert value(project, "bo_projector_events", "bo_projector_events_total", **labels) == head
        assert value(project, "bo_projector_checkpoint", "bo_projector_checkpoint", status="ACTIVE", **labels) == head
        # Published to the broker: every row has a Kafka timestamp to time freshness from.
        assert value(project, "bo_freshness_kafka_seconds", "bo_freshness_kafka_seconds_count", **labels) == head


def test_a_busy_worker_does_not_hold_up_the_masters_scrape(stack: Stack) -> None:
    """Both workers are held by clients that never finish their requests; the master still answers."""
    held = [socket.create_connection(("127.0.0.1", int(stack.api.rsplit(":", 1)[1]))) for _ in range(2)]
    try:
        for conn in held:
            conn.sendall(b"GET /admin/tx/tx-1c HTTP/1.1\r\nHost: x\r\n")  # no blank line: the worker waits
        time.sleep(0.5)
        with pytest.raises(OSError):  # the workers are held indeed: their own /metrics waits
            urllib.request.urlopen(stack.api + "/metrics", timeout=1.5)
        started = time.monotonic()
        samples = scrape(stack.metrics_url("serve"))
        assert time.monotonic() - started < 2.0
        assert "bo_api_requests" in samples
    finally:
        for conn in held:
            conn.close()


def appended(samples: Samples) -> float:
    return sum(s.value for s in samples.get("bo_ingest_messages", []) if s.name == "bo_ingest_messages_total")


def lag_is_zero(samples: Samples) -> bool:
    lag = [s.value for s in samples.get("bo_ingest_consumer_lag", [])]
    return bool(lag) and all(v == 0 for v in lag)


def wait_for(url: str, done: Callable[[Samples], bool], timeout: float = 30) -> Samples:
    deadline = time.monotonic() + timeout
    while True:
        samples = scrape(url)
        if done(samples) or time.monotonic() > deadline:
            return samples
        time.sleep(0.3)


def test_the_multiprocess_directory_is_emptied_at_start_and_a_dead_workers_gauges_go(
        database_url: str, tmp_path: Path) -> None:
    directory = tmp_path / "metrics"
    directory.mkdir()
    (directory / "counter_999999.db").write_bytes(b"stale: a previous run's")
    env = {**os.environ, "BO_DATABASE_URL": database_url, "BO_HOME": str(tmp_path / "home"), "BO_ENV": "local",
           "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    port = free_port()
    server = bo(["serve", "--bind", f"127.0.0.1:{port}", "--workers", "2"], env, tmp_path / "serve.log")
    try:
        wait_for_answer(f"http://127.0.0.1:{port}/metrics")
        for _ in range(10):  # both workers answer something, so both have made their files
            get(f"http://127.0.0.1:{port}/readyz", {})
        assert not (directory / "counter_999999.db").exists()
        deadline = time.monotonic() + 30
        while len(live_gauges(directory)) < 2 and time.monotonic() < deadline:
            get(f"http://127.0.0.1:{port}/readyz", {})
        pids = live_gauges(directory)
        assert len(pids) == 2, sorted(p.name for p in directory.iterdir())
        victim = pids[0]
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while victim in live_gauges(directory) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert victim not in live_gauges(directory), "child_exit did not mark the dead worker"
        assert (directory / f"counter_{victim}.db").exists()  # its counts still count
    finally:
        server.terminate()
        server.wait(20)


def live_gauges(directory: Path) -> list[int]:
    """Worker pids with a live-summed gauge file (requests in flight)."""
    return sorted(int(p.stem.rsplit("_", 1)[1]) for p in directory.glob("gauge_livesum_*.db"))


def test_a_worker_that_exits_leaves_the_metrics_directory_to_the_others(
        database_url: str, tmp_path: Path) -> None:
    # No PROMETHEUS_MULTIPROC_DIR: bo serve makes a temporary directory of its own. A worker is
    # forked inside the block that owns it and leaves through the master's frames: it must not
    # remove it, or its replacement cannot boot and the server halts.
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env |= {"BO_DATABASE_URL": database_url, "BO_HOME": str(tmp_path / "home"), "BO_ENV": "local"}
    port, metrics_port = free_port(), free_port()
    server = bo(["serve", "--bind", f"127.0.0.1:{port}", "--workers", "2", "--metrics-port", str(metrics_port)],
                env, tmp_path / "serve.log")
    try:
        wait_for_answer(f"http://127.0.0.1:{port}/readyz")
        master = psutil.Process(server.pid)
        deadline = time.monotonic() + 30
        while len(master.children()) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        first = master.children()[0].pid
        os.kill(first, signal.SIGTERM)  # a graceful exit, as after max_requests or a restart
        deadline = time.monotonic() + 30
        while (first in [c.pid for c in master.children()] or len(master.children()) < 2) \
                and time.monotonic() < deadline and server.poll() is None:
            time.sleep(0.2)
        time.sleep(2)  # the replacement boots
        assert server.poll() is None, (tmp_path / "serve.log").read_text()[-2000:]
        assert len(master.children()) == 2
        for _ in range(10):  # both workers answer, and the master still merges their files
            assert get(f"http://127.0.0.1:{port}/readyz", {}) == 200
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as resp:
            assert b"bo_api_requests_total" in resp.read()
    finally:
        server.terminate()
        server.wait(20)
