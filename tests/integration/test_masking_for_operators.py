"""What operators see on the command line is masked like the API: `bo dlq show` and
`bo history` show payer data only with `--unmask`."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import psycopg
import pytest

from eventstore.ingest.decode import decode
from eventstore.records import KafkaCoordinates
from replay.dead_letters import DeadLetterFilter, list_dead_letters, show_dead_letter
from tests.conftest import SAMPLES
from tests.integration.helpers import append_all, runner, sample_records

REJECTED_ORDER = {"event_id": "e-pii", "event_type": "PaymentOrderUpserted", "payload": {
    "order_id": "ord-pii", "wallet_id": "w-1", "amount": "-5", "currency": "KRW", "status": "PAID",
    "payer_name": "Lee Jiwoo", "payer_email": "jiwoo.lee@example.com", "payer_phone": "010-9876-5432"}}


@pytest.fixture(scope="module")
def projected(database_url: str) -> str:
    records = sample_records(SAMPLES)
    rejected = decode(KafkaCoordinates("bo.payment-orders.v1", 0, len(records), None), b"ord-pii",
                      json.dumps(REJECTED_ORDER).encode(), [])
    append_all(database_url, [*records, rejected])
    runner(database_url).catch_up()
    return database_url


def bo(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bo", *args], env={**os.environ, "BO_DATABASE_URL": url},
                          capture_output=True, text=True, timeout=120)


def test_dlq_show_masks_a_rejected_orders_payer_and_unmask_shows_it(projected: str) -> None:
    with psycopg.connect(projected) as conn:
        (letter,) = [d for d in list_dead_letters(conn, DeadLetterFilter(projector="payment_orders"))
                     if d["event_id"] == "e-pii"]
        masked = show_dead_letter(conn, letter["id"])
    assert masked is not None
    payload = masked["raw_value"]["json_masked"]["payload"]
    assert (payload["payer_name"], payload["payer_email"], payload["payer_phone"]) == (
        "L***", "j***@e***.com", "***-****-5432")
    shown = bo(projected, "dlq", "show", str(letter["id"]))
    assert shown.returncode == 0 and "jiwoo" not in shown.stdout.lower() and "9876" not in shown.stdout
    plain = bo(projected, "dlq", "show", str(letter["id"]), "--unmask")
    assert plain.returncode == 0 and "jiwoo.lee@example.com" in plain.stdout


def test_bo_history_lists_every_log_row_masked_unless_asked(projected: str) -> None:
    masked = bo(projected, "history", "order", "ord-1")
    assert masked.returncode == 0, masked.stderr
    assert "minji.kim@example.com" not in masked.stdout and "m***@e***.com" in masked.stdout
    assert "bo.payment-orders.v1[0]@" in masked.stdout and "APPLIED" in masked.stdout
    plain = bo(projected, "history", "order", "ord-1", "--unmask", "--json")
    items = [json.loads(line) for line in plain.stdout.splitlines()]
    assert items and any(i["payload"] and i["payload"].get("payer_email") == "minji.kim@example.com" for i in items)
    assert [i["position"] for i in items] == sorted(i["position"] for i in items)
    tx = bo(projected, "history", "tx", "tx-1c", "--json")
    assert tx.returncode == 0 and {json.loads(line)["fate"] for line in tx.stdout.splitlines()} >= {"APPLIED"}
    unknown = bo(projected, "history", "tx", "no-such-tx")
    assert unknown.returncode == 1 and "no log row" in unknown.stderr
