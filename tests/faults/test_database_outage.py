"""PostgreSQL stops for several seconds mid-stream: ingest and projection wait, say so, and lose nothing."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from bo.embedded import DevBroker
from tests.conftest import free_port, random_ref
from tests.faults.conftest import OwnServer
from tests.faults.harness import BoProcess, PacedProducer, count, env_for, logged, projected_to_head, wait_for

MESSAGES = 15_000


def health(port: int) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as err:
        return err.code, json.load(err)


@pytest.mark.faults
def test_a_database_outage_is_waited_out_and_reported(own_server: OwnServer, broker: DevBroker, tmp_path: Path) -> None:
    db = own_server.db
    topics = (random_ref("outage-ledger"), random_ref("outage-orders"))
    env = env_for(db.app, broker, topics, random_ref("group"), tmp_path)
    ports = free_port(), free_port()
    ingest = BoProcess(["ingest", "--health-port", str(ports[0])], env, tmp_path / "ingest.log")
    project = BoProcess(["project", "--health-port", str(ports[1])], env, tmp_path / "project.log")
    producer = PacedProducer(broker, topics, MESSAGES, seconds=25)
    producer.start()
    wait_for(lambda: count(db.app) > 1000, 60, "ingestion under way")

    own_server.stop()
    outage_started = time.monotonic()
    for port in ports:
        wait_for(lambda port=port: health(port)[0] == 503, 30, f"health on {port} to report the outage")
    for port in ports:
        _, body = health(port)
        assert body["status"] == "degraded" and body["reason"]
        assert body["error_kind"] == "transient", body  # it waits: nothing an operator must fix
    time.sleep(max(0.0, 6 - (time.monotonic() - outage_started)))
    assert ingest.alive() and project.alive(), "neither process exits or crash-loops while the database is down"
    own_server.start()

    for port in ports:
        wait_for(lambda port=port: health(port)[0] == 200, 60, f"health on {port} to recover")
    producer.join(60)
    assert not producer.failures
    wait_for(lambda: count(db.app) >= MESSAGES, 90, "the whole stream in the log")
    wait_for(lambda: projected_to_head(db.app), 90, "projection to the head of the log")
    coordinates = logged(db.app, topics)
    assert len(coordinates) == len(set(coordinates)) and set(coordinates) == producer.acknowledged
    assert (ingest.stop(), project.stop()) == (0, 0)
    for log in ("ingest.log", "project.log"):
        assert "database unavailable, retrying" in (tmp_path / log).read_text()
