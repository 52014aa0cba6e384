"""bo's processes for real (`bo ingest`, `bo project`, `bo serve`), each with its own
`--metrics-port`, over a test database and the development broker: for the tests that scrape
them (tests/e2e/test_metrics_of_every_process.py, tests/prometheus/)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from bo.embedded import DevBroker
from projections.tracking import CheckpointStore, datastore_for
from tests.conftest import random_ref

VERSIONS = ("ledger_entries:v1", "payment_orders:v1", "payment_ledger_pairs:v1")


@dataclass
class Stack:
    url: str
    env: dict[str, str]
    topics: tuple[str, str]
    api: str  # http://host:port of the API
    ports: dict[str, int] = field(default_factory=dict)  # process → its --metrics-port

    def metrics_url(self, process: str) -> str:
        return f"http://127.0.0.1:{self.ports[process]}/metrics"


def bo(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, "-m", "bo", *args], env=env, stdout=out, stderr=out)


@contextmanager
def running_stack(database_url: str, broker: DevBroker, logs: Path, *, workers: int = 2) -> Iterator[Stack]:
    topics = (random_ref("ledger"), random_ref("orders"))
    env = {
        **os.environ, "BO_DATABASE_URL": database_url, "BO_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
        "BO_TOPIC_LEDGER": topics[0], "BO_TOPIC_ORDERS": topics[1],
        "BO_KAFKA_GROUP_ID": random_ref("group"), "BO_HOME": str(logs / "home"),
        "BO_KAFKA_SESSION_TIMEOUT_MS": "6000", "BO_ENV": "local",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    # Every port is the kernel's choice at bind time (port 0), read back from the process's own
    # log: a port picked beforehand can be taken meanwhile, by a sibling or by an outgoing
    # connection's local port (seen in CI: "Address already in use").
    processes = {
        "ingest": bo(["ingest", "--metrics-port", "0"], env, logs / "ingest.log"),
        "project": bo(["project", "--metrics-port", "0"], env, logs / "project.log"),
        "serve": bo(["serve", "--bind", "127.0.0.1:0", "--workers", str(workers), "--metrics-port", "0"], env,
                    logs / "serve.log"),
    }
    try:
        ports = {name: logged_port(logs / f"{name}.log", processes[name], message)
                 for name, message in (("ingest", "metrics served"), ("project", "metrics served"),
                                       ("serve", "request metrics served"))}
        api_port = logged_port(logs / "serve.log", processes["serve"], "Listening at: ")
        stack = Stack(database_url, env, topics, f"http://127.0.0.1:{api_port}", ports)
        for name in processes:
            wait_for_answer(stack.metrics_url(name))
        wait_for_answer(stack.api + "/readyz")
        yield stack
    finally:
        for process in processes.values():
            process.terminate()
        codes = {name: process.wait(20) for name, process in processes.items()}
        for name in processes:
            sys.stderr.write((logs / f"{name}.log").read_text()[-3000:])
    assert codes == dict.fromkeys(processes, 0), "every process stops cleanly on SIGTERM"


def logged_port(log: Path, process: subprocess.Popen[bytes], message: str, timeout: float = 60) -> int:
    """The port a process says it bound, in the JSON log line carrying `message` ("port": N), or
    in gunicorn's "Listening at: http://host:N"."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in log.read_text(errors="replace").splitlines():
            if message not in line:
                continue
            found = re.search(r'"port": (\d+)', line) or re.search(r"Listening at: http://[^:]+:(\d+)", line)
            if found:
                return int(found.group(1))
        if process.poll() is not None:
            raise AssertionError(f"{log.name}: the process exited ({process.returncode}) before binding")
        time.sleep(0.1)
    raise AssertionError(f"{log.name}: no {message!r} line in {timeout}s")


def wait_for_answer(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                if resp.status == 200:
                    return
        except OSError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.2)


def wait_until_projected(url: str, expected_rows: int, timeout: float = 60) -> int:
    """Wait until the log holds `expected_rows` and every version applied them; the head."""
    deadline = time.monotonic() + timeout
    head = 0
    while time.monotonic() < deadline:
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT count(*), coalesce(max(position), 0) FROM bo.event_log").fetchone()
        assert row is not None
        if row[0] >= expected_rows:
            head = int(row[1])
            break
        time.sleep(0.1)
    assert head, f"ingest did not log {expected_rows} rows in {timeout}s"
    datastore = datastore_for(url)
    checkpoints = CheckpointStore(datastore)
    for name in VERSIONS:
        checkpoints.wait(name, head, timeout=timeout)
    datastore.close()
    return head


def dev_token(env: dict[str, str], *roles: str) -> str:
    """A token from the real `bo dev-token`, signed by the development issuer under BO_HOME."""
    args = [arg for role in roles for arg in ("--role", role)]
    done = subprocess.run([sys.executable, "-m", "bo", "dev-token", *args], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()
