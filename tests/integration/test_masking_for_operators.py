"""What operators see on the command line is masked like the API: `bo dlq show` and
`bo history` show payer data only with `--unmask`."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from api.auth import ADMIN_AUDIT
from eventstore.ingest.decode import decode
from eventstore.records import KafkaCoordinates
from replay.dead_letters import DeadLetterFilter, list_dead_letters, show_dead_letter
from tests.conftest import SAMPLES
from tests.integration.helpers import api_client, append_all, runner, sample_records

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


# Orders rejected *because of* a personal field: the dead letter's detail names the field and
# the rule, never the value (SPEC 6), wherever it is shown.
BAD_PERSONAL_FIELDS = {
    "ord-pii-nul": {"payer_name": "Park\u0000Seoyeon"},
    "ord-pii-null": {"payer_email": None, "payer_name": "Choi Yuna"},
    "ord-pii-type": {"payer_phone": ["010-5555-0199"], "payer_email": "yuna.choi@example.com"},
    "ord-pii-object": {"payer_name": {"family": "Jung", "given": "Hoseok"}, "payer_email": "hoseok@example.com"},
}
PERSONAL_VALUES = ("Park", "Seoyeon", "Choi Yuna", "5555", "0199", "yuna.choi", "Jung", "Hoseok")


@pytest.fixture(scope="module")
def rejected_for_personal_fields(projected: str) -> str:
    records = []
    for n, (order_id, fields) in enumerate(BAD_PERSONAL_FIELDS.items()):
        document = {"event_id": f"e-{order_id}", "event_type": "PaymentOrderUpserted", "payload": {
            "order_id": order_id, "wallet_id": "w-1", "amount": "5", "currency": "KRW", "status": "PAID", **fields}}
        records.append(decode(KafkaCoordinates("bo.payment-orders.v1", 1, 500 + n, None), order_id.encode(),
                              json.dumps(document).encode(), []))
    append_all(projected, records)
    runner(projected).catch_up()
    return projected


def test_dead_letter_details_never_hold_the_personal_value_they_refuse(rejected_for_personal_fields: str) -> None:
    url = rejected_for_personal_fields
    with psycopg.connect(url) as conn:
        letters = [d for d in list_dead_letters(conn, DeadLetterFilter(projector="payment_orders"))
                   if str(d["event_id"]).startswith("e-ord-pii-")]
        shown = [show_dead_letter(conn, d["id"]) for d in letters]
    assert len(letters) == len(BAD_PERSONAL_FIELDS)
    assert all(d["reason"] == "SCHEMA_VIOLATION" and "payload.payer_" in d["detail"] for d in letters), letters
    listed = bo(url, "dlq", "list", "--projector", "payment_orders")
    assert listed.returncode == 0, listed.stderr
    texts = [json.dumps(letters, default=str), json.dumps(shown, default=str), listed.stdout]
    with ConnectionPool(url, min_size=1, max_size=2) as pool:
        client = api_client(pool, roles=(ADMIN_AUDIT,))
        for order_id in BAD_PERSONAL_FIELDS:
            answer = client.simulate_get(f"/admin/payment-orders/{order_id}/history")
            assert answer.status_code == 200, answer.text
            assert [i["fate"] for i in answer.json["items"]] == ["DEAD_LETTERED"], answer.json
            texts.append(answer.text)
    for text in texts:
        leaked = [value for value in PERSONAL_VALUES if value in text]
        assert not leaked, (leaked, text[:2000])
