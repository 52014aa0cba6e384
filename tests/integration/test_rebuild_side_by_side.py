"""`bo rebuild NAME NAME…`: versions of several read models built side by side, one lane each
(decisions §75), are what building them one after the other gives, and both end READY."""

from __future__ import annotations

import psycopg
import pytest

from projections.ledger_entries.v2 import LedgerEntriesV2
from projections.pairs.v1 import PaymentLedgerPairsV1
from projections.payment_orders.v1 import PaymentOrdersV1
from projections.tracking import datastore_for
from replay.rebuild import RebuildRefusedError, rebuild, rebuild_side_by_side
from tests.conftest import SAMPLES
from tests.fates import all_fates
from tests.integration.helpers import TOPIC_OF, append_all, rows, runner, sample_records
from tests.integration.test_projection_lifecycle import checksum, generated_records

TABLES = ("ledger_entries_v2", "payment_ledger_pairs_v1", "payment_ledger_pairs_v1_members")


@pytest.fixture(scope="module")
def logged(database_url: str, admin_database_url: str) -> str:
    append_all(database_url, sample_records(SAMPLES) + generated_records(200, start_offset=0))
    runner(database_url).catch_up()
    # The pairs' v1 stands down (as after a cut-over to a v2 this code does not declare), so
    # that it may be rebuilt beside ledger_entries v2.
    with psycopg.connect(admin_database_url) as conn:
        conn.execute("UPDATE bo.projectors SET status = 'RETIRED' WHERE name = 'payment_ledger_pairs'")
    return database_url


def built(url: str) -> dict[str, str]:
    return {table: checksum(url, table) for table in TABLES} | {
        "ledger_entries_v2 fates": str(all_fates(url, "ledger_entries", version=2)), "dead_letters": str(rows(
        url, "SELECT projector, projector_version, position, reason, detail FROM bo.dead_letters"
             " WHERE (projector, projector_version) IN (('ledger_entries', 2), ('payment_ledger_pairs', 1))"
             " ORDER BY 1, 2, 3"))}


def test_read_models_rebuilt_side_by_side_are_what_one_after_the_other_builds(logged: str) -> None:
    datastore = datastore_for(logged, pool_size=3)
    try:
        head = rows(logged, "SELECT max(position) AS head FROM bo.event_log")[0]["head"]
        for projector in (LedgerEntriesV2(), PaymentLedgerPairsV1()):
            assert rebuild(datastore, projector, TOPIC_OF, batch_size=150, restart=True, force=True).status == "READY"
        one_after_the_other = built(logged)
        seen: list[tuple[int, int]] = []
        outcomes = rebuild_side_by_side(datastore, [LedgerEntriesV2(), PaymentLedgerPairsV1()], TOPIC_OF,
                                        batch_size=97, restart=True, force=True, lanes=2,
                                        on_progress=lambda done, total: seen.append((done, total)))
    finally:
        datastore.close()
    assert [(o.name, o.status, o.checkpoint, o.resumed_from, o.read) for o in outcomes] == [
        ("ledger_entries", "READY", head, 0, head), ("payment_ledger_pairs", "READY", head, 0, head)]
    assert seen[0] == (0, head) and seen[-1] == (head, head) and len(seen) > 2
    assert built(logged) == one_after_the_other


def test_one_version_refused_leaves_every_other_as_it_was(logged: str) -> None:
    before = built(logged)
    statuses = "SELECT name, version, status FROM bo.projectors ORDER BY 1, 2"
    registered = rows(logged, statuses)
    datastore = datastore_for(logged)
    try:
        with pytest.raises(RebuildRefusedError, match="payment_orders v1 is ACTIVE"):
            # ledger_entries v2 first (READY, --restart --force would empty it), then an ACTIVE one.
            rebuild_side_by_side(datastore, [LedgerEntriesV2(), PaymentOrdersV1()], TOPIC_OF, restart=True,
                                 force=True, lanes=2)
        with pytest.raises(ValueError):
            rebuild_side_by_side(datastore, [LedgerEntriesV2(), LedgerEntriesV2()], TOPIC_OF)
    finally:
        datastore.close()
    assert built(logged) == before and rows(logged, statuses) == registered
