"""Two and three `bo ingest` processes in one group, joining and leaving: every message once."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from bo.embedded import DevBroker
from eventstore.db import connect
from eventstore.verify import verify
from tests.conftest import random_ref
from tests.faults.conftest import Db
from tests.faults.harness import BoProcess, PacedProducer, count, env_for, logged, wait_for

MESSAGES = 30_000


@pytest.mark.faults
def test_members_joining_and_leaving_never_duplicate_or_lose(db: Db, broker: DevBroker, tmp_path: Path) -> None:
    topics = (random_ref("group-ledger"), random_ref("group-orders"))
    env = env_for(db.app, broker, topics, random_ref("group"), tmp_path)
    producer = PacedProducer(broker, topics, MESSAGES, seconds=40)
    producer.start()

    def member(name: str) -> BoProcess:
        return BoProcess(["ingest"], env, tmp_path / f"{name}.log")

    a, b = member("a"), member("b")
    time.sleep(8)
    c = member("c")  # a third member joins: three in the group
    time.sleep(8)
    assert a.stop() == 0  # one leaves cleanly
    time.sleep(6)
    b.kill()  # one dies
    d = member("d")  # and a new one joins
    producer.join(90)
    assert not producer.failures
    wait_for(lambda: count(db.app) >= MESSAGES, 120, "the whole stream in the log")
    assert (c.stop(), d.stop()) == (0, 0)

    with connect(db.app) as conn:
        report = verify(conn)
    assert report.ok, report.problems
    coordinates = logged(db.app, topics)
    assert len(coordinates) == len(set(coordinates)), "a message was appended twice"
    assert set(coordinates) == producer.acknowledged
    appended = sum(int(line.split('"appended": ')[1].split(",")[0])
                   for name in "acd" for line in (tmp_path / f"{name}.log").read_text().splitlines()
                   if '"ingest stopped"' in line)
    assert appended < MESSAGES, "the work was shared: the killed member appended some of it"
