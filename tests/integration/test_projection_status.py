"""`bo projections status`: where each version is, how far behind, what it rejected, and pairing quality."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import psycopg

from projections.status import projector_status, quality
from tests.conftest import SAMPLES
from tests.integration.helpers import append_all, runner, sample_records


def test_status_reports_lag_then_catches_up_with_dead_letters_and_quality(database_url: str) -> None:
    records = sample_records(SAMPLES)
    append_all(database_url, records)
    with psycopg.connect(database_url) as conn:
        behind = {v["name"]: v for v in projector_status(conn)}
    assert {v["lag_events"] for v in behind.values()} == {len(records)}
    assert all(v["lag_seconds"] >= 0 and v["checkpoint"] == 0 for v in behind.values())

    runner(database_url).catch_up()
    with psycopg.connect(database_url) as conn:
        caught_up = {v["name"]: v for v in projector_status(conn)}
        figures = quality(conn)
    assert set(caught_up) == {"ledger_entries", "payment_orders", "payment_ledger_pairs"}
    for v in caught_up.values():
        assert (v["version"], v["status"], v["lag_events"], v["checkpoint"]) == (1, "ACTIVE", 0, len(records))
    assert caught_up["ledger_entries"]["open_dead_letters"] == 4  # not JSON, 2 violations, the conflict
    assert caught_up["payment_orders"]["open_dead_letters"] == 3  # unknown type, v9, lower-case currency
    assert figures["pairs"] == 3 and figures["pair_incomplete_ratio"] == round(2 / 3, 4)  # ord-2, ord-3
    assert figures["version_missing_cnt"] == 4  # tx-nv and tx-nv2, two unversioned events each
    assert figures["pairing_latency_p50_s"] is not None and figures["pairing_latency_p50_s"] >= 0


def test_bo_projections_status_prints_json(database_url: str) -> None:
    env = {**os.environ, "BO_DATABASE_URL": database_url}
    done = subprocess.run([sys.executable, "-m", "bo", "projections", "status", "--json"], env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)
    assert len(body["projectors"]) == 3 and "pair_incomplete_ratio" in body["quality"]
    table = subprocess.run([sys.executable, "-m", "bo", "projections", "status"], env=env, capture_output=True,
                           text=True)
    assert "ledger_entries" in table.stdout and "pair_incomplete_ratio" in table.stdout
