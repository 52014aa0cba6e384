"""Projection lifecycle: rebuild a version beside the active one, diff, activate, roll back, resume.

Runs on one database per module, in order: the samples plus generated payments are
logged and projected by v1, then ledger_entries v2 is built beside it.
"""

from __future__ import annotations

import threading
from typing import Any

import psycopg
import pytest

from bo.generate import StreamShape, generate
from eventstore.db import open_pool
from eventstore.ingest.decode import decode
from eventstore.records import KafkaCoordinates, LogRecord
from projections import registry
from projections.ledger_entries.v2 import LedgerEntriesV2
from projections.tracking import datastore_for
from replay.cutover import CutoverRefusedError, activate, rollback
from replay.diff import diff
from replay.rebuild import RebuildRefusedError, rebuild
from tests.conftest import SAMPLES
from tests.fates import all_fates
from tests.integration.helpers import TOPIC_OF, api_client, append_all, rows, runner, sample_records

LEDGER_TOPIC, ORDERS_TOPIC = TOPIC_OF["LedgerEntryUpserted"], TOPIC_OF["PaymentOrderUpserted"]


def generated_records(payments: int, start_offset: int) -> list[LogRecord]:
    offsets: dict[str, int] = {}
    records = []
    for message in generate(StreamShape(payments=payments, seed=11), LEDGER_TOPIC, ORDERS_TOPIC):
        offset = offsets.get(message.topic, start_offset)
        offsets[message.topic] = offset + 1
        records.append(decode(KafkaCoordinates(message.topic, 1, offset, None), message.key, message.value,
                              list(message.headers)))
    return records


def api_get(url: str, path: str) -> dict[str, Any]:
    """GET through the WSGI app, as the API serves whichever version is active."""
    pool = open_pool(url)
    try:
        client = api_client(pool, cursor_secret=b"s" * 32)
        result = client.simulate_get(path)
        assert result.status_code == 200, result.text
        return dict(result.json)
    finally:
        pool.close()


def checksum(url: str, table: str) -> str:
    """A content checksum of a whole table: md5 of its rows in key order."""
    return str(rows(url, f"SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) AS sum FROM bo.{table} t")[0]["sum"])


@pytest.fixture(scope="module")
def logged(database_url: str) -> str:
    append_all(database_url, sample_records(SAMPLES) + generated_records(300, start_offset=0))
    runner(database_url).catch_up()
    return database_url


def test_a_new_version_builds_beside_the_active_one_and_becomes_ready(logged: str) -> None:
    served_before = checksum(logged, "ledger_entries")
    datastore = datastore_for(logged)
    seen: list[tuple[int, int]] = []
    outcome = rebuild(datastore, LedgerEntriesV2(), TOPIC_OF, batch_size=500,
                      on_progress=lambda done, total: seen.append((done, total)))
    head = rows(logged, "SELECT max(position) AS head FROM bo.event_log")[0]["head"]
    assert (outcome.status, outcome.checkpoint, outcome.resumed_from) == ("READY", head, 0)
    assert seen[0] == (0, head) and seen[-1] == (head, head) and len(seen) > 2
    assert checksum(logged, "ledger_entries") == served_before  # readers still see v1
    registered = rows(logged, "SELECT status, fingerprint, built_at FROM bo.projectors"
                              " WHERE name = 'ledger_entries' AND version = 2")[0]
    assert registered["status"] == "READY" and registered["fingerprint"] == LedgerEntriesV2.fingerprint()
    minor = {r["tx_id"]: (r["amount"], r["currency"], r["amount_minor"]) for r in rows(
        logged, "SELECT tx_id, amount, currency, amount_minor FROM bo.ledger_entries_v2")}
    assert minor["tx-1d"][2] == 12500 and minor["tx-1d"][1] == "KRW"  # KRW has no minor unit
    usd = [v for v in minor.values() if v[1] == "USD"]
    assert usd and all(v[2] == int(v[0] * 100) for v in usd)
    datastore.close()


def test_diff_counts_no_row_changes_and_names_the_new_column(logged: str) -> None:
    result = diff(datastore_for(logged), "ledger_entries", 1, 2)
    assert (result.added, result.removed, result.changed) == (0, 0, 0) and not result.differ
    assert result.only_in_b == ["amount_minor"] and result.rows_a == result.rows_b > 500


def test_diff_reports_added_removed_and_changed_rows_per_column(logged: str, admin_database_url: str) -> None:
    with psycopg.connect(admin_database_url) as conn:
        conn.execute("UPDATE bo.ledger_entries_v2 SET status = 'TAMPERED' WHERE tx_id = 'tx-1d'")
        conn.execute("DELETE FROM bo.ledger_entries_v2 WHERE tx_id = 'tx-1c'")
        conn.execute("INSERT INTO bo.ledger_entries_v2 SELECT * FROM bo.ledger_entries_v2 WHERE tx_id = 'tx-1d'"
                     " ON CONFLICT DO NOTHING")
        conn.execute("""INSERT INTO bo.ledger_entries_v2 (tx_id, wallet_id, entry_type, amount, currency, status,
                        status_group, related_type, booked_at, event_id, ingested_at, position, projector_version)
                        VALUES ('tx-extra', 'w', 'DEBIT', 1, 'KRW', 'POSTED', 'SUCCESS', 'UNKNOWN', now(), 'x',
                        now(), 1, 2)""")
    try:
        result = diff(datastore_for(logged), "ledger_entries", 1, 2)
        assert (result.added, result.removed, result.changed) == (1, 1, 1) and result.differ
        assert result.changed_by_column == {"status": 1}
        assert result.samples["status"] == [{"key": "tx-1d", "a_value": "POSTED", "b_value": "TAMPERED"}]
        assert result.added_samples == ["tx-extra"] and result.removed_samples == ["tx-1c"]
    finally:  # put v2 back as a build gives it
        datastore = datastore_for(logged)
        assert rebuild(datastore, LedgerEntriesV2(), TOPIC_OF, restart=True, force=True).status == "READY"
        datastore.close()


def test_rebuilding_the_same_version_gives_identical_tables_whatever_the_batch_size(logged: str) -> None:
    first = (checksum(logged, "ledger_entries_v2"), all_fates(logged, "ledger_entries", version=2))
    datastore = datastore_for(logged)
    with pytest.raises(RebuildRefusedError, match="READY"):
        rebuild(datastore, LedgerEntriesV2(), TOPIC_OF, restart=True)  # a rollback target is not emptied lightly
    assert rebuild(datastore, LedgerEntriesV2(), TOPIC_OF, batch_size=37, restart=True, force=True).status == "READY"
    assert (checksum(logged, "ledger_entries_v2"), all_fates(logged, "ledger_entries", version=2)) == first
    datastore.close()


def test_a_stopped_rebuild_resumes_from_its_checkpoint(logged: str) -> None:
    expected = checksum(logged, "ledger_entries_v2")
    datastore = datastore_for(logged)
    stop = threading.Event()

    def stop_after_first_batch(done: int, total: int) -> None:
        if done > 0:
            stop.set()

    stopped = rebuild(datastore, LedgerEntriesV2(), TOPIC_OF, batch_size=400, restart=True, force=True, stop=stop,
                      on_progress=stop_after_first_batch)
    assert stopped.status == "BUILDING" and stopped.checkpoint == 400
    with pytest.raises(CutoverRefusedError, match="still BUILDING"):
        activate(datastore, "ledger_entries", 2)
    resumed = rebuild(datastore, LedgerEntriesV2(), TOPIC_OF, batch_size=400)
    assert resumed.resumed_from == 400 and resumed.status == "READY"
    assert checksum(logged, "ledger_entries_v2") == expected
    datastore.close()


def test_activation_is_refused_for_a_version_behind_the_active_one(logged: str) -> None:
    append_all(logged, generated_records(5, start_offset=100_000))
    datastore = datastore_for(logged)
    active_only = runner(logged)
    active_only.projectors = [p for p in active_only.projectors if p.version == 1]
    active_only.catch_up()  # v1 reads the new rows, v2 does not
    with pytest.raises(CutoverRefusedError, match="behind"):
        activate(datastore, "ledger_entries", 2)
    assert activate(datastore, "ledger_entries", 2, force=True).active == 2  # the operator's call
    assert rollback(datastore, "ledger_entries").active == 1
    runner(logged).catch_up()  # as `bo project` does for READY versions
    assert activate(datastore, "ledger_entries", 2).active == 2
    assert {r["projector_version"] for r in rows(logged, "SELECT projector_version FROM bo.ledger_entries")} == {2}
    served = rows(logged, "SELECT amount_minor FROM bo.ledger_entries WHERE tx_id = 'tx-1d'")
    assert served == [{"amount_minor": 12500}]
    with pytest.raises(RebuildRefusedError, match="ACTIVE"):
        rebuild(datastore, LedgerEntriesV2(), TOPIC_OF, restart=True)
    body = api_get(logged, "/admin/tx/tx-1d")
    assert (body["amount"], body["amount_minor"], body["projection"]) == (
        "12500.00", 12500, {"name": "ledger_entries", "version": 2})
    back = rollback(datastore, "ledger_entries")
    assert (back.previous, back.active) == (2, 1)
    assert rows(logged, "SELECT amount_minor FROM bo.ledger_entries WHERE tx_id = 'tx-1d'") == [
        {"amount_minor": None}]
    body = api_get(logged, "/admin/tx/tx-1d")
    assert "amount_minor" not in body and body["projection"]["version"] == 1
    datastore.close()


def test_readers_never_see_a_mix_or_an_error_during_cut_overs(logged: str) -> None:
    expected = rows(logged, "SELECT count(*) AS n FROM bo.ledger_entries_v1")[0]["n"]
    assert rows(logged, "SELECT count(*) AS n FROM bo.ledger_entries_v2")[0]["n"] == expected
    stop = threading.Event()
    seen: list[Any] = []
    errors: list[BaseException] = []

    def read() -> None:
        try:
            with psycopg.connect(logged, autocommit=True) as conn:
                while not stop.is_set():
                    seen.append(conn.execute(
                        "SELECT array_agg(DISTINCT projector_version), count(*),"
                        " count(*) FILTER (WHERE amount_minor IS NOT NULL) > 0 FROM bo.ledger_entries").fetchone())
        except BaseException as exc:
            errors.append(exc)

    readers = [threading.Thread(target=read) for _ in range(3)]
    for reader in readers:
        reader.start()
    datastore = datastore_for(logged)
    for _ in range(15):
        activate(datastore, "ledger_entries", 2)
        rollback(datastore, "ledger_entries")
    stop.set()
    for reader in readers:
        reader.join()
    datastore.close()
    assert not errors
    assert len(seen) > 30
    versions_seen = {tuple(versions) for versions, _, _ in seen}
    assert versions_seen <= {(1,), (2,)} and len(versions_seen) == 2
    assert all(count == expected for _, count, _ in seen)
    assert all(has_minor == (versions == [2]) for versions, _, has_minor in seen)


def test_registry_lists_every_declared_version() -> None:
    assert registry.latest("ledger_entries").version == 2
    assert {cls.name for cls in registry.DECLARED} == set(registry.NAMES)


def test_a_registered_version_this_code_does_not_declare_is_skipped_not_fatal(
        logged: str, admin_database_url: str) -> None:
    with psycopg.connect(admin_database_url) as conn:
        conn.execute("INSERT INTO bo.projectors (name, version, status) VALUES ('ledger_entries', 9, 'READY')")
    try:
        names = [p.tracking_name() for p in runner(logged).projectors]
        assert "ledger_entries:v9" not in names and "ledger_entries:v1" in names
    finally:
        with psycopg.connect(admin_database_url) as conn:
            conn.execute("DELETE FROM bo.projectors WHERE version = 9")
