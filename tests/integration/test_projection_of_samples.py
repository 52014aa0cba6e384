"""Projector version 1 over the shared samples: every expectation of samples/README.md.

The samples are appended straight into the log (one partition per topic, file order),
then the real runner projects them with the real tracking recorder.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from decimal import Decimal

import psycopg
import pytest

from tests.conftest import SAMPLES
from tests.fates import fates_by_event_id
from tests.integration.helpers import append_all, rows, runner, sample_records

READ_TABLES = ("ledger_entries_v1", "payment_orders_v1", "payment_ledger_pairs_v1",
               "payment_ledger_pairs_v1_members", "dead_letters")


@pytest.fixture(scope="module")
def projected(database_url: str) -> Iterator[str]:
    append_all(database_url, sample_records(SAMPLES), batch=5)
    runner(database_url).catch_up()
    yield database_url


def one(url: str, query: str, **params: object) -> dict[str, object]:
    found = rows(url, query, params)
    assert len(found) == 1, found
    return found[0]


def test_complete_payment_out_of_order_with_stale_versions(projected: str) -> None:
    pair = one(projected, "SELECT * FROM bo.payment_ledger_pairs WHERE order_id = 'ord-1'")
    assert (pair["pairing_status"], pair["missing"]) == ("COMPLETE", [])
    assert (pair["debit_tx_id"], pair["credit_tx_id"]) == ("tx-1d", "tx-1c")
    assert pair["completed_at"] is not None and pair["first_seen_at"] <= pair["completed_at"]
    debit = one(projected, "SELECT * FROM bo.ledger_entries WHERE tx_id = 'tx-1d'")
    assert (debit["status"], debit["version"]) == ("POSTED", 2)
    order = one(projected, "SELECT * FROM bo.payment_orders WHERE order_id = 'ord-1'")
    assert (order["status"], order["version"]) == ("PAID", 3)
    fates = {e: fates_by_event_id(projected, "ledger_entries", e) for e in ("e-003", "e-004")}
    assert fates == {"e-003": ["APPLIED"], "e-004": ["SUPERSEDED"]}
    assert fates_by_event_id(projected, "payment_orders", "e-005") == ["SUPERSEDED"]


def test_partial_pair_names_what_is_missing(projected: str) -> None:
    pair = one(projected, "SELECT * FROM bo.payment_ledger_pairs WHERE order_id = 'ord-2'")
    assert (pair["pairing_status"], pair["missing"], pair["order_present"]) == (
        "PARTIAL", ["PAYMENT_ORDER", "CREDIT"], False)
    assert pair["completed_at"] is None


def test_amount_mismatch(projected: str) -> None:
    pair = one(projected, "SELECT * FROM bo.payment_ledger_pairs WHERE order_id = 'ord-3'")
    assert pair["pairing_status"] == "MISMATCH"


def test_unpaired_entries_have_no_pair_row(projected: str) -> None:
    fee = one(projected, "SELECT * FROM bo.ledger_entries WHERE tx_id = 'tx-fee-1'")
    adj = one(projected, "SELECT * FROM bo.ledger_entries WHERE tx_id = 'tx-adj-1'")
    assert fee["related_type"] == "UNKNOWN" and adj["related_type"] == "MANUAL_ADJUSTMENT"
    assert rows(projected, "SELECT * FROM bo.payment_ledger_pairs WHERE order_id = 'adj-9'") == []


def test_without_version_updated_at_decides(projected: str) -> None:
    entry = one(projected, "SELECT * FROM bo.ledger_entries WHERE tx_id = 'tx-nv'")
    assert entry["status"] == "FAILED" and entry["version"] is None
    assert entry["version_missing_cnt"] == 2


def test_without_version_or_updated_at_last_ingested_wins(projected: str) -> None:
    entry = one(projected, "SELECT * FROM bo.ledger_entries WHERE tx_id = 'tx-nv2'")
    assert (entry["status"], entry["status_group"]) == ("WEIRD_STATUS", "UNKNOWN")


def test_duplicate_delivery_is_logged_twice_and_applied_once(projected: str) -> None:
    logged = rows(projected, "SELECT position FROM bo.event_log WHERE event_id = 'e-001' ORDER BY position")
    assert len(logged) == 3  # the original, its duplicate delivery, and the conflicting reuse
    fates = fates_by_event_id(projected, "ledger_entries", "e-001")
    assert fates == ["APPLIED", "DUPLICATE", "DEAD_LETTERED"]


@pytest.mark.parametrize(("key", "reason", "field"), [
    ("tx-bad-1", "INVALID_JSON", "(root)"),
    ("tx-bad-2", "SCHEMA_VIOLATION", "payload.entry_type"),
    ("tx-bad-3", "SCHEMA_VIOLATION", "payload.amount"),
    ("ord-x", "UNKNOWN_EVENT_TYPE", "event_type"),
    ("ord-y", "UNSUPPORTED_SCHEMA_VERSION", "schema_version"),
    ("ord-z", "SCHEMA_VIOLATION", "payload.currency"),
])
def test_invalid_messages_are_dead_lettered_naming_the_field(projected: str, key: str, reason: str,
                                                             field: str) -> None:
    letters = rows(projected, """
        SELECT d.projector, d.reason, d.detail FROM bo.dead_letters d
          JOIN bo.event_log l USING (position) WHERE l.raw_key = %(key)s""", {"key": key.encode()})
    projector = "payment_orders" if key.startswith("ord") else "ledger_entries"
    mine = [d for d in letters if d["projector"] == projector]
    assert len(mine) == 1
    assert mine[0]["reason"] == reason
    assert str(mine[0]["detail"]).startswith(f"{field}:")


def test_conflicting_event_id_is_dead_lettered_and_changes_nothing(projected: str) -> None:
    letter = one(projected, """SELECT * FROM bo.dead_letters
                                WHERE projector = 'ledger_entries' AND reason = 'DUPLICATE_EVENT_ID_CONFLICT'""")
    assert letter["event_id"] == "e-001"
    credit = one(projected, "SELECT * FROM bo.ledger_entries WHERE tx_id = 'tx-1c'")
    assert (credit["wallet_id"], credit["amount"]) == ("w-merchant", Decimal("12500.00"))


def test_every_message_is_in_the_log(projected: str) -> None:
    assert rows(projected, "SELECT count(*) AS n FROM bo.event_log")[0]["n"] == len(
        SAMPLES.read_text().splitlines())


def test_amounts_keep_the_scale_they_were_sent_with(projected: str) -> None:
    amounts = {r["tx_id"]: str(r["amount"]) for r in rows(projected, "SELECT tx_id, amount FROM bo.ledger_entries")}
    assert amounts["tx-1d"] == "12500.00" and amounts["tx-2d"] == "3000" and amounts["tx-3c"] == "99.90"


def checksum(url: str) -> str:
    digest = hashlib.sha256()
    with psycopg.connect(url) as conn:
        for table in READ_TABLES:
            order = "id" if table == "dead_letters" else "1"
            columns = "projector, projector_version, position, event_id, reason, detail, status" \
                if table == "dead_letters" else "*"
            for row in conn.execute(f"SELECT {columns} FROM bo.{table} ORDER BY {order}, 2, 3"):
                digest.update(repr(row).encode())
    return digest.hexdigest()


def reset_projections(url: str) -> None:
    with psycopg.connect(url) as conn:
        conn.execute("TRUNCATE " + ", ".join(f"bo.{t}" for t in READ_TABLES))
        conn.execute("DELETE FROM bo.projection_tracking WHERE application_name <> '__migration__'")


def test_rebuilding_with_any_batch_size_gives_identical_tables(projected: str, admin_database_url: str) -> None:
    before = checksum(projected)
    reset_projections(admin_database_url)
    assert checksum(projected) != before
    small = runner(projected, batch_size=1)
    while any(small.run_batch(p).read for p in small.projectors):
        pass  # one event at a time, as if killed and resumed after every batch
    assert checksum(projected) == before
