"""Lanes (decisions §75): read models projected side by side, each in its own transactions.

What one lane builds, any number of lanes build: tests/integration/test_engines_agree.py.
Here: a failure in one lane stops the others after their batch in flight, and the error
raised is the gravest of the lanes' errors.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from bo.generate import StreamShape, generate
from eventstore.ingest.decode import decode
from eventstore.records import KafkaCoordinates, LogRecord
from projections.payment_orders.v1 import PaymentOrdersV1
from projections.projector import DictCursor
from projections.registry import DECLARED
from projections.runner import ProjectionRunner, _gravest
from projections.tracking import datastore_for
from tests.integration.helpers import TOPIC_OF, append_all, rows


class DefectiveOrders(PaymentOrdersV1):
    """payment_orders v1 with a defect: its batches raise."""

    def apply_batch(self, cur: DictCursor) -> None:
        raise RuntimeError("a defect in a read model's batch")


def generated(payments: int) -> Iterator[LogRecord]:
    offsets: dict[str, int] = {}
    for message in generate(StreamShape(payments=payments, seed=75), TOPIC_OF["LedgerEntryUpserted"],
                            TOPIC_OF["PaymentOrderUpserted"]):
        offset = offsets.get(message.topic, 0)
        offsets[message.topic] = offset + 1
        yield decode(KafkaCoordinates(message.topic, 0, offset, None), message.key, message.value,
                     list(message.headers))


def test_a_failing_lane_stops_the_others_and_its_error_is_raised(database_url: str) -> None:
    append_all(database_url, list(generated(150)))
    head = rows(database_url, "SELECT max(position) AS head FROM bo.event_log")[0]["head"]
    projectors = [cls() for cls in DECLARED if cls.version == 1 and cls.name != "payment_orders"]
    projectors.append(DefectiveOrders())
    runner = ProjectionRunner(datastore_for(database_url, pool_size=3), projectors, TOPIC_OF, batch_size=5, lanes=2)
    try:
        with pytest.raises(RuntimeError, match="a defect"):
            runner.catch_up()
    finally:
        runner.datastore.close()
    checkpoints = {r["application_name"]: r["checkpoint"] for r in rows(
        database_url, "SELECT application_name, max(notification_id) AS checkpoint FROM bo.projection_tracking"
                      " GROUP BY application_name")}
    # The pairs' lane stopped long before the head (at 5 rows a batch it needed over a hundred).
    assert checkpoints.get("payment_ledger_pairs:v1", 0) < head // 2, (checkpoints, head)
    assert "payment_orders:v1" not in checkpoints  # its lane's batch rolled back whole


def test_a_defect_or_a_permanent_error_is_raised_before_a_transient_one() -> None:
    transient = psycopg.OperationalError("connection to server lost")
    permanent = psycopg.errors.InsufficientPrivilege("permission denied for table event_log")
    defect = RuntimeError("a defect")
    assert _gravest([transient, defect]) is defect
    assert _gravest([transient, permanent]) is permanent
    assert _gravest([transient]) is transient
