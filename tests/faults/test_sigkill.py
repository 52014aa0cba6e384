"""SIGKILL `bo ingest` (and `bo project`) at random moments while 50,000 messages arrive.

Afterwards the log holds exactly the (topic, partition, offset) set the broker
acknowledged, once each; the read tables equal a from-scratch rebuild; and every restart
resumed consuming within 10 s.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from bo.embedded import DevBroker
from eventstore.db import connect
from eventstore.verify import verify
from tests.conftest import random_ref
from tests.faults.conftest import Db
from tests.faults.harness import (
    BoProcess,
    PacedProducer,
    count,
    env_for,
    logged,
    projected_to_head,
    read_tables,
    rebuild_from_scratch,
    wait_for,
)

MESSAGES, KILLS = 50_000, 20


@pytest.mark.faults
def test_sigkilled_ingest_loses_nothing_and_duplicates_nothing(db: Db, broker: DevBroker, tmp_path: Path) -> None:
    rng = random.Random(20261126)
    topics = (random_ref("kill-ledger"), random_ref("kill-orders"))
    env = env_for(db.app, broker, topics, random_ref("group"), tmp_path)
    producer = PacedProducer(broker, topics, MESSAGES, seconds=100)
    producer.start()
    project = BoProcess(["project"], env, tmp_path / "project.log")
    recoveries: list[float] = []
    for kill in range(KILLS):
        ingest = BoProcess(["ingest"], env, tmp_path / "ingest.log")
        before = count(db.app)
        recoveries.append(wait_for(lambda before=before: count(db.app) > before, 30, f"consumption after restart {kill}"))
        time.sleep(rng.uniform(0.05, 1.5))
        ingest.kill()
        if kill % 5 == 4:  # the projector dies too, now and then
            project.kill()
            project = BoProcess(["project"], env, tmp_path / "project.log")
    producer.join(120)
    assert not producer.failures and len(producer.acknowledged) == MESSAGES

    ingest = BoProcess(["ingest"], env, tmp_path / "ingest.log")
    wait_for(lambda: count(db.app) >= MESSAGES, 120, "the whole stream in the log")
    wait_for(lambda: projected_to_head(db.app), 120, "projection to the head of the log")
    assert (ingest.stop(), project.stop()) == (0, 0), "both stop cleanly on SIGTERM"

    coordinates = logged(db.app, topics)
    assert len(coordinates) == len(set(coordinates)), "a message was appended twice"
    assert set(coordinates) == producer.acknowledged, "the log differs from what the broker acknowledged"
    assert max(recoveries) < 10, f"recovery times {sorted(recoveries)}"
    print(f"recovery after SIGKILL: median {sorted(recoveries)[len(recoveries) // 2]:.1f} s, max {max(recoveries):.1f} s")

    with connect(db.app) as conn:
        report = verify(conn)
    assert report.ok and report.rows == MESSAGES, report.problems

    projected = read_tables(db.app)
    rebuild_from_scratch(db.admin, db.app, topics)
    assert read_tables(db.app) == projected, "the read tables differ from a from-scratch rebuild"
