"""`bo backfill`: dumps appended with file coordinates, idempotently, bad lines kept and reported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg

from replay.backfill import backfill
from tests.conftest import SAMPLES
from tests.integration.helpers import rows, runner


def sample_values() -> list[str]:
    return [json.loads(line)["value"] for line in SAMPLES.read_text().splitlines()]


def test_a_jsonl_dump_is_logged_once_with_bad_lines_reported(database_url: str, tmp_path: Path) -> None:
    dump = tmp_path / "ledger-dump.jsonl"
    dump.write_text("\n".join(sample_values()) + "\n\n")
    with psycopg.connect(database_url) as conn:
        first = backfill(conn, dump, batch_size=5)
        again = backfill(conn, dump, batch_size=5)
    assert (first.lines, first.appended, first.already_logged) == (23, 23, 0)
    assert first.bad_lines == [17]  # the "{not json" line, by its number in the file
    assert (again.appended, again.already_logged) == (0, 23)
    logged = rows(database_url, "SELECT source, source_file, source_line, raw_value FROM bo.event_log"
                                " WHERE source = 'backfill' ORDER BY source_line")
    assert [r["source_line"] for r in logged] == list(range(1, 24))
    assert {r["source_file"] for r in logged} == {first.file_identity}
    assert first.file_identity.startswith("ledger-dump.jsonl@sha256:")
    assert [bytes(r["raw_value"]).decode() for r in logged] == sample_values()


def test_a_csv_dump_becomes_envelopes_the_projectors_apply(database_url: str, tmp_path: Path) -> None:
    dump = tmp_path / "orders.csv"
    dump.write_text(
        "event_id,event_type,schema_version,order_id,wallet_id,amount,currency,status,version,updated_at\n"
        "csv-1,PaymentOrderUpserted,1,ord-csv,w-9,12500.00,KRW,CREATED,1,2026-02-05T09:00:00Z\n"
        "csv-2,PaymentOrderUpserted,1,ord-csv,w-9,12500.00,KRW,PAID,2,2026-02-05T09:01:00Z\n"
        'csv-3,PaymentOrderUpserted,1,"ord-bad",only-six-cells\n'
        "csv-4,PaymentOrderUpserted,1,ord-csv2,w-9,1.5,usd,PAID,,\n"
    )
    with psycopg.connect(database_url) as conn:
        report = backfill(conn, dump)
    assert (report.lines, report.appended, report.bad_lines) == (4, 4, [4])
    runner(database_url).catch_up()
    order = rows(database_url, "SELECT * FROM bo.payment_orders WHERE order_id = 'ord-csv'")[0]
    assert (order["status"], order["version"], str(order["amount"])) == ("PAID", 2, "12500.00")
    letters = rows(database_url, """
        SELECT l.source_line, d.reason, d.detail FROM bo.dead_letters d JOIN bo.event_log l USING (position)
         WHERE d.projector = 'payment_orders' AND l.source_file = %(f)s ORDER BY 1""", {"f": report.file_identity})
    assert [(r["source_line"], r["reason"]) for r in letters] == [(4, "INVALID_JSON"), (5, "SCHEMA_VIOLATION")]
    assert letters[1]["detail"].startswith("payload.currency")


def test_a_csv_header_with_a_byte_order_mark_is_read(database_url: str, tmp_path: Path) -> None:
    dump = tmp_path / "bom.csv"
    dump.write_bytes("\ufeffevent_id,event_type,tx_id,wallet_id,entry_type,amount,currency,status\n"
                     "bom-1,LedgerEntryUpserted,tx-bom,w,DEBIT,1,KRW,POSTED\r\n".encode())
    with psycopg.connect(database_url) as conn:
        report = backfill(conn, dump)
    assert (report.appended, report.bad_lines) == (1, [])
    logged = rows(database_url, "SELECT event_id FROM bo.event_log WHERE source_file = %(f)s", {"f": report.file_identity})
    assert logged == [{"event_id": "bom-1"}]


def test_bo_backfill_prints_what_it_did(database_url: str, tmp_path: Path) -> None:
    dump = tmp_path / "cli.jsonl"
    dump.write_text("\n".join(sample_values()[:3]) + "\nnot json\n")
    env = {**os.environ, "BO_DATABASE_URL": database_url}
    done = subprocess.run([sys.executable, "-m", "bo", "backfill", str(dump)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "4 lines, 4 appended, 0 already in the log" in done.stdout
    assert "lines 4" in done.stdout
    again = subprocess.run([sys.executable, "-m", "bo", "backfill", str(dump)], env=env, capture_output=True, text=True)
    assert "0 appended, 4 already in the log" in again.stdout
