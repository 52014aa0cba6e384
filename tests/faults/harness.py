"""Fault-injection harness: a paced producer, real `bo` processes, and what the log holds."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from confluent_kafka import Producer

from bo.embedded import DevBroker
from projections.registry import DECLARED
from projections.runner import ProjectionRunner
from projections.tracking import datastore_for

Coordinate = tuple[str, int, int]


class PacedProducer(threading.Thread):
    """Produces `total` valid-looking events over `seconds`, recording what the broker acknowledged."""

    def __init__(self, broker: DevBroker, topics: tuple[str, str], total: int, seconds: float) -> None:
        super().__init__(name="producer", daemon=True)
        self.broker, self.topics, self.total, self.seconds = broker, topics, total, seconds
        self.acknowledged: set[Coordinate] = set()
        self.failures: list[str] = []

    def run(self) -> None:
        producer = Producer({"bootstrap.servers": self.broker.bootstrap, "linger.ms": 5, "log_level": 3})
        started = time.monotonic()

        def delivered(err: Any, msg: Any) -> None:
            if err is not None:
                self.failures.append(str(err))
            else:
                self.acknowledged.add((msg.topic(), msg.partition(), msg.offset()))

        for n in range(self.total):
            ledger = n % 3 != 0
            payload: dict[str, Any] = {"wallet_id": f"w-{n % 50}", "amount": f"{1000 + n % 7}.00",
                                       "currency": "KRW", "status": "POSTED", "version": 1 + n % 4,
                                       "related_id": f"ord-{n // 3}"}
            if ledger:
                payload |= {"tx_id": f"tx-{n // 3}-{'d' if n % 3 == 1 else 'c'}",
                            "entry_type": "DEBIT" if n % 3 == 1 else "CREDIT"}
            else:
                payload = {**payload, "order_id": f"ord-{n // 3}"}
                del payload["related_id"]
            value = json.dumps({"event_id": f"f-{n}", "event_type": "LedgerEntryUpserted" if ledger
                                else "PaymentOrderUpserted", "payload": payload})
            producer.produce(self.topics[0] if ledger else self.topics[1], key=str(n // 3).encode(),
                             value=value.encode(), on_delivery=delivered)
            if n % 200 == 0:
                producer.poll(0)
                ahead = started + self.seconds * n / self.total - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)
        assert producer.flush(60) == 0


class BoProcess:
    """A real `python -m bo …` process with its own log file."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.args, self.log = args, log
        self._start_offset = log.stat().st_size if log.exists() else 0
        self._out = log.open("ab")
        self.process = subprocess.Popen([sys.executable, "-m", "bo", *args], env=env, stdout=self._out,
                                        stderr=self._out)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        self._out.close()

    def wait_until_logged(self, marker: str, timeout: float = 60) -> None:
        """Wait until this process (not an earlier one sharing the file) has logged `marker`."""
        def seen() -> bool:
            with self.log.open("rb") as log:
                log.seek(self._start_offset)
                return marker.encode() in log.read()
        wait_for(seen, timeout, f"{marker!r} from {' '.join(self.args)}")

    def stop(self) -> int:
        """SIGTERM once the process is up (a process still importing has no handler yet)."""
        self.wait_until_logged('"logger": "bo"')
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(30)
        self._out.close()
        return code

    def alive(self) -> bool:
        return self.process.poll() is None


def env_for(url: str, broker: DevBroker, topics: tuple[str, str], group: str, home: Path) -> dict[str, str]:
    return {**os.environ, "BO_DATABASE_URL": url, "BO_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
            "BO_TOPIC_LEDGER": topics[0], "BO_TOPIC_ORDERS": topics[1], "BO_KAFKA_GROUP_ID": group,
            "BO_HOME": str(home), "BO_KAFKA_SESSION_TIMEOUT_MS": "3000", "BO_INGEST_BATCH_SIZE": "500",
            "BO_PROJECT_BATCH_SIZE": "500"}


def logged(url: str, topics: tuple[str, str]) -> list[Coordinate]:
    with psycopg.connect(url) as conn:
        return [(t, p, o) for t, p, o in conn.execute(
            'SELECT topic, "partition", "offset" FROM bo.event_log WHERE topic = ANY(%s)', (list(topics),))]


def count(url: str) -> int:
    try:
        with psycopg.connect(url, connect_timeout=2) as conn:
            row = conn.execute("SELECT count(*) FROM bo.event_log").fetchone()
            return int(row[0]) if row else 0
    except psycopg.OperationalError:
        return -1


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if condition():
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def projected_to_head(url: str) -> bool:
    with psycopg.connect(url) as conn:
        row = conn.execute("""
            SELECT (SELECT coalesce(max(position), 0) FROM bo.event_log),
                   (SELECT coalesce(min(coalesce(t.notification_id, 0)), 0) FROM bo.projectors p
                      LEFT JOIN bo.projection_tracking t ON t.application_name = p.name || ':v' || p.version
                     WHERE p.status = 'ACTIVE')""").fetchone()
    return row is not None and row[1] >= row[0]


READ_TABLES = ("ledger_entries_v1", "payment_orders_v1", "payment_ledger_pairs_v1", "payment_ledger_pairs_v1_members")


def read_tables(url: str) -> dict[str, list[tuple[Any, ...]]]:
    with psycopg.connect(url) as conn:
        return {t: conn.execute(f"SELECT * FROM bo.{t} ORDER BY 1, 2").fetchall() for t in READ_TABLES}


def rebuild_from_scratch(admin_url: str, app_url: str, topics: tuple[str, str]) -> None:
    """Empty every read table and checkpoint, then project the whole log again in-process."""
    with psycopg.connect(admin_url) as conn:
        conn.execute("TRUNCATE " + ", ".join(f"bo.{t}" for t in READ_TABLES) + ", bo.dead_letters")
        conn.execute("DELETE FROM bo.projection_tracking WHERE application_name <> '__migration__'")
    topic_of = {"LedgerEntryUpserted": topics[0], "PaymentOrderUpserted": topics[1]}
    datastore = datastore_for(app_url)
    ProjectionRunner(datastore, [cls() for cls in DECLARED if cls.version == 1], topic_of).catch_up()
    datastore.close()
