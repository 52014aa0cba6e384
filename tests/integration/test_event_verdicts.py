"""A log row is judged once per contract: batches load the verdicts this code already reached."""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from bo.generate import StreamShape, generate
from eventstore.ingest.decode import decode
from eventstore.records import KafkaCoordinates, LogRecord
from projections import batch, verdicts
from projections.ledger_entries.v2 import LedgerEntriesV2
from projections.runner import JudgeAhead
from projections.tracking import datastore_for
from replay.rebuild import rebuild
from tests.integration.helpers import TOPIC_OF, append_all, rows, runner

LEDGER, ORDERS = "bo.ledger-entries.v1", "bo.payment-orders.v1"
VERDICT_ROW = ", ".join(verdicts.COLUMNS)


def generated(payments: int, seed: int, first_payment: int, partition: int) -> list[LogRecord]:
    """Generated payments on a partition of their own (each test's offsets start at 0)."""
    offsets: dict[str, int] = {}
    out = []
    for m in generate(StreamShape(payments=payments, seed=seed, first_payment=first_payment), LEDGER, ORDERS):
        offsets[m.topic] = offsets.get(m.topic, -1) + 1
        out.append(decode(KafkaCoordinates(m.topic, partition, offsets[m.topic], None), m.key, m.value, list(m.headers)))
    return out


def head(url: str) -> int:
    return int(rows(url, "SELECT coalesce(max(position), 0) AS h FROM bo.event_log")[0]["h"])


def prepared(url: str, after: int, up_to: int) -> list[dict[str, Any]]:
    """bo_batch for (after, up_to] as `batch.prepare` leaves it (committed, so verdicts are kept)."""
    with psycopg.connect(url) as conn, conn.cursor(row_factory=dict_row) as cur:
        batch.prepare(cur, batch.Rows(after=after, up_to=up_to))
        found = cur.execute(f"SELECT {VERDICT_ROW} FROM bo_batch ORDER BY position").fetchall()
        cur.execute("DELETE FROM bo_batch")
    return found


def test_loaded_verdicts_equal_the_judged_ones_rejections_and_duplicates_included(database_url: str) -> None:
    start = head(database_url)
    append_all(database_url, generated(60, seed=41, first_payment=0, partition=0))
    end = head(database_url)
    judged = prepared(database_url, start, end)
    kept = rows(database_url, "SELECT position, contract FROM bo.event_verdicts WHERE position > %(a)s"
                              " AND position <= %(b)s", {"a": start, "b": end})
    loaded = prepared(database_url, start, end)
    assert {r["contract"] for r in kept} == {verdicts.CONTRACT} and len(kept) == end - start
    assert loaded == judged
    assert {r["verdict"] for r in judged} == {"VALID", "REJECTED"}
    assert {r["occurrence"] for r in judged} >= {"FIRST", "DUPLICATE"}


def test_a_new_version_built_over_a_judged_log_judges_nothing(database_url: str,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    before = head(database_url)
    append_all(database_url, generated(40, seed=42, first_payment=1000, partition=1))
    assert head(database_url) > before
    runner(database_url).catch_up()  # judges the log, and keeps the verdicts

    def judging(*_: object) -> None:
        raise AssertionError("a row already judged by this code was judged again")

    monkeypatch.setattr(batch, "_decide_in_python", judging)
    monkeypatch.setattr(batch, "_judge_occurrences", judging)
    outcome = rebuild(datastore_for(database_url), LedgerEntriesV2(), TOPIC_OF, batch_size=500)
    assert outcome.status == "READY" and outcome.read == head(database_url)
    v1 = rows(database_url, "SELECT tx_id, amount, status, version, position FROM bo.ledger_entries_v1 ORDER BY tx_id")
    v2 = rows(database_url, "SELECT tx_id, amount, status, version, position FROM bo.ledger_entries_v2 ORDER BY tx_id")
    assert v2 == v1 and len(v1) > 100


def test_code_with_another_contract_judges_again(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    start = head(database_url)
    append_all(database_url, generated(20, seed=43, first_payment=2000, partition=2))
    end = head(database_url)
    assert end > start
    first = prepared(database_url, start, end)
    monkeypatch.setattr(verdicts, "CONTRACT", "another-contract")
    again = prepared(database_url, start, end)
    kept = rows(database_url, "SELECT DISTINCT contract FROM bo.event_verdicts WHERE position > %(a)s"
                              " AND position <= %(b)s", {"a": start, "b": end})
    assert again == first
    assert [r["contract"] for r in kept] == ["another-contract"]


def test_live_projection_applies_what_the_judge_thread_judged(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    judged_on: list[str] = []
    decide = batch._decide_in_python

    def recorded(cur: Any) -> None:
        judged_on.append(threading.current_thread().name)
        decide(cur)

    monkeypatch.setattr(batch, "_decide_in_python", recorded)
    live = runner(database_url, batch_size=400)
    stop = threading.Event()
    follower = threading.Thread(target=live.run, args=(stop, database_url), kwargs={"idle_wait_s": 0.05})
    follower.start()
    try:
        for n in range(3):
            append_all(database_url, generated(15, seed=44 + n, first_payment=3000 + 100 * n, partition=3 + n))
            live.wait_for(head(database_url), timeout=60)
    finally:
        stop.set()
        follower.join(timeout=60)
    assert judged_on and set(judged_on) == {"judge-ahead"}  # no batch judged its rows itself
    reference = runner(database_url)  # the same versions, caught up here: nothing left to read
    assert reference.catch_up() == 0


def test_batches_judge_their_own_rows_once_the_judge_has_failed(database_url: str) -> None:
    def broken() -> int:
        raise RuntimeError("the judge cannot start")

    judge = JudgeAhead(database_url, broken, batch_size=1000, wait_s=30)
    judge.start()
    started = time.monotonic()
    assert judge.judged(0, 500) == 500  # at once: nobody else will judge them
    assert time.monotonic() - started < 10
    judge.close()


def test_a_batch_waits_for_the_range_the_judge_is_on(database_url: str) -> None:
    append_all(database_url, generated(10, seed=50, first_payment=4000, partition=6))
    end = head(database_url)
    judge = JudgeAhead(database_url, lambda: end - 60, batch_size=4000)  # judges (end - 60, end]
    judge.start()
    try:
        assert judge.judged(end - 60, end) == end  # waited for the range, then reads all of it
    finally:
        judge.close()
    kept = rows(database_url, "SELECT count(*) AS n FROM bo.event_verdicts WHERE position > %(a)s",
                {"a": end - 60})
    assert kept[0]["n"] == 60


def test_a_batch_far_ahead_of_the_judge_does_not_wait_for_it(database_url: str) -> None:
    append_all(database_url, generated(400, seed=51, first_payment=5000, partition=7))
    end = head(database_url)
    judge = JudgeAhead(database_url, lambda: 0, batch_size=2000, wait_s=30)  # from position 0, 500 at a time
    judge.start()
    try:
        started = time.monotonic()
        assert judge.judged(end - 1, end) == end  # another version holds the judge back: no waiting
        assert time.monotonic() - started < 10
    finally:
        judge.close()


def test_the_kept_verdict_has_every_column_of_the_batch(database_url: str) -> None:
    # The migration spells out the table (a migration is frozen history and imports nothing),
    # so this holds the three lists together: bo_batch, verdicts.COLUMNS and bo.event_verdicts.
    with psycopg.connect(database_url) as conn:
        conn.execute(batch.CREATE_BATCH)
        batch_columns = [r[0] for r in conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = 'bo_batch'::regclass AND attnum > 0"
            " AND NOT attisdropped ORDER BY attnum").fetchall()]
        kept_columns = [r[0] for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'bo'"
            " AND table_name = 'event_verdicts' ORDER BY ordinal_position").fetchall()]
        conn.rollback()
    assert [c for c in batch_columns if c != "fresh"] == list(verdicts.COLUMNS)
    assert [c for c in kept_columns if c != "contract"] == list(verdicts.COLUMNS)
