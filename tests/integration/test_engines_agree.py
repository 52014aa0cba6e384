"""The SQL engine and the Python engine (the executable specification) build the same tables.

`ProjectionRunner(engine="sql")` judges a batch once in `bo_batch` (projections/batch.py) and
applies it set-based (`apply_batch`); `engine="python"` walks the same log rows through each
projector's `apply` over the pure cores (`newest_wins.decide`, `pairs.book.PairBook`). For a
generated log (few entities, so that they collide: versions and updated_at with ties, moves of
ledger legs between orders, duplicate deliveries, event_id conflicts across event types,
invalid messages, several appends so that ingested_at differs), both engines, each with a batch
size of its own, must leave identical read tables, fates and dead letters.

Each example gets a fresh database cloned from a migrated template (about 0.1 s); the log is
appended once, projected by the SQL engine, the projections are reset (as the superuser: the
application's role cannot TRUNCATE) and the same log is projected by the Python engine.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql

from bo.embedded import app_role_url
from bo.migrate import upgrade
from eventstore.ingest.decode import decode
from eventstore.records import KafkaCoordinates, LogRecord
from projections.runner import PYTHON_ENGINE, SQL_ENGINE
from tests.conftest import _create_database, _drop_database
from tests.fates import all_fates, fates_of
from tests.integration.helpers import TOPIC_OF, append_all, rows, runner

LEDGER_TOPIC, ORDERS_TOPIC = TOPIC_OF["LedgerEntryUpserted"], TOPIC_OF["PaymentOrderUpserted"]
APP_ROLE = "bo_app_test"

# Every table a running version writes (ledger_entries v2 is registered READY in the template,
# so that both engines also run two versions of one name side by side).
READ_TABLES = (
    "ledger_entries_v1", "ledger_entries_v2", "payment_orders_v1", "payment_ledger_pairs_v1",
    "payment_ledger_pairs_v1_members",
)
# The versions with a history: their fates, as the history derives them on read (projections/fates.py).
HISTORIES = (("ledger_entries", 1), ("ledger_entries", 2), ("payment_orders", 1))
DEAD_LETTERS = """
    SELECT projector, projector_version, position, event_id, reason, detail, status
      FROM bo.dead_letters ORDER BY projector, projector_version, position
"""
CHECKPOINTS = "SELECT application_name, notification_id FROM bo.projection_tracking ORDER BY 1"


# --- databases ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def template(pg_base_url: str) -> Iterator[str]:
    """A migrated database to clone per example (its name); ledger_entries v2 runs too (READY)."""
    url = _create_database(pg_base_url)
    upgrade(url)
    app_role_url(url, role=APP_ROLE)
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO bo.projectors (name, version, status, build_started_at, built_at)"
                     " VALUES ('ledger_entries', 2, 'READY', now(), now())")
    yield str(psycopg.conninfo.conninfo_to_dict(url)["dbname"])
    _drop_database(pg_base_url, url)


@contextmanager
def fresh_database(pg_base_url: str, template: str) -> Iterator[str]:
    """A clone of the template (superuser URL), dropped afterwards."""
    name = f"bo_agree_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_base_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template)))
    url = psycopg.conninfo.make_conninfo(pg_base_url, dbname=name)
    try:
        yield url
    finally:
        _drop_database(pg_base_url, url)


def app_url(admin_url: str) -> str:
    return psycopg.conninfo.make_conninfo(admin_url, user=APP_ROLE)


def project(url: str, engine: str, batch_size: int, lanes: int = 1) -> dict[str, dict[int, str]]:
    """Catch the running versions up with `engine`. With the Python engine (the executable
    specification), answer each version's fates as its `apply` decided them batch by batch,
    and hold the fates the history derives on read (projections/fates.py) to them."""
    projection_runner = runner(url, batch_size=batch_size, engine=engine, lanes=lanes)
    decided: dict[str, dict[int, str]] = {}
    project_rows = projection_runner._project

    def recording(cur: Any, projector: Any, log_rows: Any) -> dict[int, str]:
        fates = project_rows(cur, projector, log_rows)
        decided.setdefault(projector.tracking_name(), {}).update(fates)
        return fates

    projection_runner._project = recording  # type: ignore[method-assign,assignment]
    try:
        projection_runner.catch_up()
    finally:
        projection_runner.datastore.close()
    for name, version in HISTORIES:
        spec = decided.get(f"{name}:v{version}", {})
        if spec:
            derived = fates_of(url, name, "l.position = ANY(%(positions)s)", {"positions": sorted(spec)},
                               version=version)
            assert derived == dict(sorted(spec.items())), f"{name} v{version}: derived fates (left) differ"
    return decided


def reset_projections(admin_url: str) -> None:
    """Forget every projection (not the log): what a build from position 0 starts from."""
    with psycopg.connect(admin_url) as conn:
        conn.execute(sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(
            [sql.Identifier("bo", t) for t in READ_TABLES] + [sql.Identifier("bo", "dead_letters")])))
        conn.execute("DELETE FROM bo.projection_tracking WHERE application_name <> '__migration__'")


def _plain(value: Any) -> Any:
    # Decimal("10") == Decimal("10.00"): compare numerics as text, so that the scale counts too.
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def contents(url: str) -> dict[str, list[dict[str, Any]]]:
    tables = {t: rows(url, f"SELECT * FROM bo.{t} t ORDER BY t::text") for t in READ_TABLES}
    for name, version in HISTORIES:
        tables[f"{name} v{version} fates"] = [{"position": p, "fate": f}
                                              for p, f in all_fates(url, name, version=version).items()]
    tables["dead_letters"] = rows(url, DEAD_LETTERS)
    tables["projection_tracking"] = rows(url, CHECKPOINTS)
    return {t: [{k: _plain(v) for k, v in r.items()} for r in table] for t, table in tables.items()}


def assert_same(by_sql: dict[str, list[dict[str, Any]]], by_python: dict[str, list[dict[str, Any]]]) -> None:
    for table in by_python:
        assert by_sql[table] == by_python[table], f"bo.{table}: the SQL engine (left) differs from the Python engine"


# --- generated logs -----------------------------------------------------------------------------

ORDERS = ("o1", "o2", "o3")
TXS = ("t1", "t2", "t3", "t4", "t5", "t6")
AMOUNTS: tuple[str | int, ...] = ("10", "10.00", "10.5", 7)
CURRENCIES = ("KRW", "USD")
STATUSES = ("POSTED", "pending", "FAILED", "Completed", "ON_HOLD", "paıd")
# Ties: 10:00Z = 19:00+09:00, and a fraction below the microsecond is truncated to 10:00Z.
TIMESTAMPS = ("2026-02-05T10:00:00Z", "2026-02-05T19:00:00+09:00", "2026-02-05T10:00:00.0000009Z",
              "2026-02-05T10:00:01.5Z", "2026-02-06T00:00:00Z")


@dataclass(frozen=True)
class Delivery:
    """One Kafka message; `new_append` starts another `append_all` call (another ingested_at)."""

    topic: str
    key: str | None
    value: bytes
    new_append: bool

    def __repr__(self) -> str:
        cut = "| " if self.new_append else "  "
        return f"\n  {cut}{self.topic.split('.')[1]:<15} {self.value.decode('utf-8', 'replace')}"


def optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy)


def _with_optional(draw: st.DrawFn, payload: dict[str, Any], **fields: st.SearchStrategy[Any]) -> dict[str, Any]:
    for name, strategy in fields.items():
        value = draw(optional(strategy))
        if value is not None:
            payload[name] = value
    return payload


ORDERING: dict[str, st.SearchStrategy[Any]] = {
    "version": st.integers(0, 3), "updated_at": st.sampled_from(TIMESTAMPS), "created_at": st.sampled_from(TIMESTAMPS)}


@st.composite
def ledger_payload(draw: st.DrawFn, tx_id: str | None = None) -> dict[str, Any]:
    payload = {
        "tx_id": tx_id or draw(st.sampled_from(TXS)), "wallet_id": draw(st.sampled_from(["w1", "w2"])),
        "entry_type": draw(st.sampled_from(["DEBIT", "CREDIT"])), "amount": draw(st.sampled_from(AMOUNTS)),
        "currency": draw(st.sampled_from(CURRENCIES)), "status": draw(st.sampled_from(STATUSES)),
    }
    return _with_optional(draw, payload, related_id=st.sampled_from(ORDERS),
                          related_type=st.sampled_from(["PAYMENT_ORDER", "OTHER"]), **ORDERING)


@st.composite
def order_payload(draw: st.DrawFn) -> dict[str, Any]:
    payload = {
        "order_id": draw(st.sampled_from(ORDERS)), "wallet_id": draw(st.sampled_from(["w1", "w2"])),
        "amount": draw(st.sampled_from(AMOUNTS)), "currency": draw(st.sampled_from(CURRENCIES)),
        "status": draw(st.sampled_from(STATUSES)),
    }
    return _with_optional(
        draw, payload, merchant_id=st.just("m1"), payment_method=st.sampled_from(["CARD", "WALLET"]),
        payer_name=st.sampled_from(["김민준", "Kim Minjun", "A", ""]),
        payer_email=st.sampled_from(["minjun.kim@example.com", "x@y", "no-at-sign"]),
        payer_phone=st.sampled_from(["010-1234-5678", "+82 10 1234 5678"]),
        account_number=st.sampled_from(["110-123-456789", "12"]), **ORDERING)


def envelope(event_id: str, event_type: str, payload: dict[str, Any]) -> dict[str, Any]:
    return {"event_id": event_id, "event_type": event_type, "schema_version": 1, "payload": payload}


def entity_of(document: dict[str, Any]) -> str | None:
    payload = document.get("payload", {})
    entity = payload.get("tx_id") or payload.get("order_id")
    return entity if isinstance(entity, str) else None


@st.composite
def logs(draw: st.DrawFn) -> list[Delivery]:
    deliveries: list[Delivery] = []
    valid: list[dict[str, Any]] = []  # envelopes delivered valid, for duplicates
    used_ids: list[str] = []  # every event_id delivered, for conflicts
    fresh = iter(f"e{n}" for n in range(10_000))

    def deliver(document: dict[str, Any] | None, *, raw: bytes | None = None, topic: str | None = None) -> None:
        if document is not None:
            if document.get("schema_version") == 1 and draw(st.booleans()):
                del document["schema_version"]  # the default
            ensure_ascii = draw(st.booleans())
            raw = json.dumps(document, ensure_ascii=ensure_ascii).encode()
            if document.get("event_type") in TOPIC_OF:
                topic = topic or TOPIC_OF[document["event_type"]]
            if isinstance(document.get("event_id"), str):
                used_ids.append(document["event_id"])
        assert raw is not None
        topic = topic or draw(st.sampled_from([LEDGER_TOPIC, ORDERS_TOPIC]))
        new_append = bool(deliveries) and draw(st.booleans())
        deliveries.append(Delivery(topic, entity_of(document) if document else None, raw, new_append))

    def valid_event(event_id: str) -> dict[str, Any]:
        if draw(st.booleans()):
            return envelope(event_id, "LedgerEntryUpserted", draw(ledger_payload()))
        return envelope(event_id, "PaymentOrderUpserted", draw(order_payload()))

    for _ in range(draw(st.integers(1, 24))):
        kind = draw(st.sampled_from(["ledger", "order", "payment", "move", "duplicate", "conflict", "invalid"]))
        if kind == "ledger" or (kind == "duplicate" and not valid) or (kind == "conflict" and not used_ids):
            document = envelope(next(fresh), "LedgerEntryUpserted", draw(ledger_payload()))
        elif kind == "order":
            document = envelope(next(fresh), "PaymentOrderUpserted", draw(order_payload()))
        elif kind == "payment":  # an order and both legs that agree (bar the amount's scale), any arrival order
            order_id, amount, currency = (draw(st.sampled_from(ORDERS)), draw(st.sampled_from(["10", "10.00"])),
                                          draw(st.sampled_from(CURRENCIES)))
            debit, credit = draw(st.lists(st.sampled_from(TXS), min_size=2, max_size=2, unique=True))
            same = {"amount": amount, "currency": currency}
            members = [
                envelope(next(fresh), "PaymentOrderUpserted", {**draw(order_payload()), "order_id": order_id, **same}),
                *(envelope(next(fresh), "LedgerEntryUpserted", {
                    **draw(ledger_payload(tx_id)), "entry_type": entry_type, "related_id": order_id, **same})
                  for tx_id, entry_type in ((debit, "DEBIT"), (credit, "CREDIT"))),
            ]
            for document in draw(st.permutations(members)):
                document["payload"].pop("related_type", None)
                valid.append(document)
                deliver(document)
            continue
        elif kind == "move":  # a ledger entry changes orders between two versions, in either arrival order
            tx_id, version = draw(st.sampled_from(TXS)), draw(st.integers(0, 2))
            before, after = draw(st.lists(st.sampled_from(ORDERS), min_size=2, max_size=2, unique=True))
            first = {**draw(ledger_payload(tx_id)), "related_id": before, "version": version}
            second = {**first, "related_id": after, "version": version + 1}
            if draw(st.booleans()):
                second.pop("related_type", None)
            moves = [envelope(next(fresh), "LedgerEntryUpserted", p) for p in (first, second)]
            for document in moves if draw(st.booleans()) else moves[::-1]:
                valid.append(document)
                deliver(document)
            continue
        elif kind == "duplicate":  # the same event again: same event_id and payload
            document = valid[draw(st.integers(0, len(valid) - 1))]
            if draw(st.booleans()):  # the same payload, its keys in another order
                document = {**document, "payload": dict(reversed(list(document["payload"].items())))}
            if draw(st.booleans()):  # another envelope around the same payload
                document = {**document, "occurred_at": draw(st.sampled_from(TIMESTAMPS))}
        elif kind == "conflict":  # an event_id reused with another payload (possibly another type)
            document = valid_event(draw(st.sampled_from(used_ids)))
        else:
            invalid = draw(st.sampled_from(["not_json", "missing", "lower_currency", "unknown_type",
                                            "schema_version_2"]))
            reuse = bool(used_ids) and draw(st.booleans())  # an invalid message may carry a known event_id
            event_id = draw(st.sampled_from(used_ids)) if reuse else next(fresh)
            if invalid == "not_json":
                deliver(None, raw=b'{"event_id": "' + event_id.encode() + b'", "payload": ')
                continue
            document = valid_event(event_id)
            if invalid == "missing":
                document["payload"].pop(draw(st.sampled_from(["wallet_id", "amount", "status", "currency"])))
            elif invalid == "lower_currency":
                document["payload"]["currency"] = document["payload"]["currency"].lower()
            elif invalid == "unknown_type":
                document["event_type"] = "PaymentOrderRefunded"
            else:
                document["schema_version"] = 2
            deliver(document, topic=draw(st.sampled_from([LEDGER_TOPIC, ORDERS_TOPIC])))
            continue
        valid.append(document)
        deliver(document)
    return deliveries


def appends(deliveries: list[Delivery]) -> list[list[LogRecord]]:
    """The deliveries as records (unique, increasing offsets per topic), one list per append."""
    groups: list[list[LogRecord]] = []
    offsets: dict[str, int] = {}
    for delivery in deliveries:
        offset = offsets.get(delivery.topic, 0)
        offsets[delivery.topic] = offset + 1
        record = decode(KafkaCoordinates(delivery.topic, 0, offset, None),
                        delivery.key.encode() if delivery.key is not None else None, delivery.value, [])
        if delivery.new_append or not groups:
            groups.append([])
        groups[-1].append(record)
    return groups


# --- the property -------------------------------------------------------------------------------

@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(log=logs(), sql_batch=st.integers(1, 50), python_batch=st.integers(1, 50))
def test_the_sql_engine_builds_what_the_python_engine_builds(
        pg_base_url: str, template: str, log: list[Delivery], sql_batch: int, python_batch: int) -> None:
    by_sql, by_python = built_twice(pg_base_url, template, log, (SQL_ENGINE, sql_batch, 1),
                                    (PYTHON_ENGINE, python_batch, 1))
    assert_same(by_sql, by_python)


Build = tuple[str, int, int]  # engine, batch size, lanes


def built_twice(pg_base_url: str, template: str, log: list[Delivery], first: Build, second: Build, *,
                judge_again: bool = False) -> tuple[dict[str, list[dict[str, Any]]], dict[str, list[dict[str, Any]]]]:
    """The log appended to a fresh database, projected from position 0 one way, then the other
    (`judge_again`: with the kept verdicts forgotten, so that the second build judges too)."""
    with fresh_database(pg_base_url, template) as admin:
        url = app_url(admin)
        for group in appends(log):
            append_all(url, group)
        project(url, *first)
        built = contents(url)
        reset_projections(admin)
        if judge_again:
            with psycopg.connect(admin) as conn:
                conn.execute("DELETE FROM bo.event_verdicts")
        project(url, *second)
        return built, contents(url)


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(log=logs(), batch=st.integers(1, 50), lanes=st.integers(2, 4), lanes_batch=st.integers(1, 50),
       judge_again=st.booleans())
def test_read_models_projected_in_lanes_side_by_side_are_what_one_lane_builds(
        pg_base_url: str, template: str, log: list[Delivery], batch: int, lanes: int, lanes_batch: int,
        judge_again: bool) -> None:
    # judge_again: the lanes judge the same rows side by side and keep the same verdicts.
    in_one_lane, in_lanes = built_twice(pg_base_url, template, log, (SQL_ENGINE, batch, 1),
                                        (SQL_ENGINE, lanes_batch, lanes), judge_again=judge_again)
    assert in_lanes == in_one_lane


# --- a hand-written history: COMPLETE, MISMATCH, a pair emptied and refilled --------------------

def ledger(event_id: str, tx_id: str, entry_type: str, version: int, related_id: str | None,
           amount: str = "10", **extra: Any) -> dict[str, Any]:
    payload = {"tx_id": tx_id, "wallet_id": "w1", "entry_type": entry_type, "amount": amount, "currency": "KRW",
               "status": "POSTED", "version": version, **extra}
    if related_id is not None:
        payload["related_id"] = related_id
    return envelope(event_id, "LedgerEntryUpserted", payload)


def order(event_id: str, order_id: str, version: int, amount: str = "10") -> dict[str, Any]:
    return envelope(event_id, "PaymentOrderUpserted", {
        "order_id": order_id, "wallet_id": "w1", "amount": amount, "currency": "KRW", "status": "PAID",
        "version": version, "payer_name": "김민준", "payer_email": "minjun.kim@example.com"})


# One append per step (each its own ingested_at); after each, the pairs as SPEC 4.3 has them:
# order_id → (pairing_status, missing, step whose ingested_at is completed_at, step of first_seen_at).
Expected = dict[str, tuple[str, list[str], int | None, int]]
HISTORY: list[tuple[list[dict[str, Any]], Expected]] = [
    ([order("h1", "o-a", 1)], {"o-a": ("PARTIAL", ["DEBIT", "CREDIT"], None, 0)}),
    ([ledger("h2", "t-d", "DEBIT", 1, "o-a")], {"o-a": ("PARTIAL", ["CREDIT"], None, 0)}),
    ([ledger("h3", "t-c", "CREDIT", 1, "o-a", amount="10.00")], {"o-a": ("COMPLETE", [], 2, 0)}),
    # An amount correction in a newer version: MISMATCH; completed_at stays the first completion's.
    ([ledger("h4", "t-c", "CREDIT", 2, "o-a", amount="12")], {"o-a": ("MISMATCH", [], 2, 0)}),
    # The debit moves to o-b, which has no order: o-b appears with the debit alone (seen since step 1).
    ([ledger("h5", "t-d", "DEBIT", 2, "o-b")],
     {"o-a": ("PARTIAL", ["DEBIT"], 2, 0), "o-b": ("PARTIAL", ["PAYMENT_ORDER", "CREDIT"], None, 1)}),
    # ... and away again (no longer a payment order's): o-b has no member left, and no row.
    ([ledger("h6", "t-d", "DEBIT", 3, "o-b", related_type="OTHER")], {"o-a": ("PARTIAL", ["DEBIT"], 2, 0)}),
    # ... and back, beside a stale version that changes nothing: o-b reappears.
    ([ledger("h7", "t-d", "DEBIT", 4, "o-b"), ledger("h8", "t-d", "DEBIT", 1, "o-a")],
     {"o-a": ("PARTIAL", ["DEBIT"], 2, 0), "o-b": ("PARTIAL", ["PAYMENT_ORDER", "CREDIT"], None, 1)}),
    # The credit follows it (corrected back to 10), then o-b's order arrives: o-b COMPLETE.
    ([ledger("h9", "t-c", "CREDIT", 3, "o-b")],
     {"o-a": ("PARTIAL", ["DEBIT", "CREDIT"], 2, 0), "o-b": ("PARTIAL", ["PAYMENT_ORDER"], None, 1)}),
    ([order("h10", "o-b", 1), ledger("h3", "t-c", "CREDIT", 1, "o-a", amount="10.00")],  # h3 again: a duplicate
     {"o-a": ("PARTIAL", ["DEBIT", "CREDIT"], 2, 0), "o-b": ("COMPLETE", [], 8, 1)}),
    # Both legs return to o-a in one append: o-a COMPLETE again, still dated by its first completion;
    # o-b keeps its completed_at though it is PARTIAL now.
    ([ledger("h11", "t-d", "DEBIT", 5, "o-a"), ledger("h12", "t-c", "CREDIT", 4, "o-a")],
     {"o-a": ("COMPLETE", [], 2, 0), "o-b": ("PARTIAL", ["DEBIT", "CREDIT"], 8, 8)}),
]


def copy_log(source_admin: str, target_admin: str, after: int) -> None:
    """Rows of the log after `after`, byte for byte (ingested_at included), into another database."""
    query = sql.SQL("COPY (SELECT * FROM bo.event_log WHERE position > {} ORDER BY position) TO STDOUT"
                    " (FORMAT binary)").format(sql.Literal(after))
    with psycopg.connect(source_admin) as source, psycopg.connect(target_admin) as target, \
            source.cursor().copy(query) as out, \
            target.cursor().copy("COPY bo.event_log FROM STDIN (FORMAT binary)") as into:
        for chunk in out:
            into.write(chunk)


@pytest.mark.parametrize(("sql_batch", "python_batch"), [(1000, 1000), (1, 2)])
def test_complete_mismatch_emptied_and_refilled_pairs_agree_step_by_step(
        pg_base_url: str, template: str, sql_batch: int, python_batch: int) -> None:
    with fresh_database(pg_base_url, template) as sql_admin, fresh_database(pg_base_url, template) as py_admin:
        sql_url, py_url = app_url(sql_admin), app_url(py_admin)
        offset = 0
        ingested_at: list[datetime] = []
        pair_fates: dict[int, str] = {}  # the Python engine's, its apply's decisions (no table keeps them)
        for step, (documents, expected) in enumerate(HISTORY):
            records = []
            for document in documents:
                topic = TOPIC_OF[document["event_type"]]
                records.append(decode(KafkaCoordinates(topic, 0, offset, None), None,
                                      json.dumps(document, ensure_ascii=False).encode(), []))
                offset += 1
            head = rows(sql_url, "SELECT coalesce(max(position), 0) AS head FROM bo.event_log")[0]["head"]
            append_all(sql_url, records)
            copy_log(sql_admin, py_admin, head)
            ingested_at.append(rows(sql_url, "SELECT max(ingested_at) AS at FROM bo.event_log")[0]["at"])
            project(sql_url, SQL_ENGINE, sql_batch)
            pair_fates.update(project(py_url, PYTHON_ENGINE, python_batch).get("payment_ledger_pairs:v1", {}))

            by_sql, by_python = contents(sql_url), contents(py_url)
            assert_same(by_sql, by_python)
            pairs = {r["order_id"]: (r["pairing_status"], r["missing"], r["completed_at"], r["first_seen_at"])
                     for r in by_python["payment_ledger_pairs_v1"]}
            assert pairs == {o: (status, missing, ingested_at[done] if done is not None else None, ingested_at[seen])
                             for o, (status, missing, done, seen) in expected.items()}, f"after step {step}"

        positions = {int(r["position"]): r["event_id"] for r in rows(
            py_url, "SELECT position, event_id FROM bo.event_log WHERE event_id IN ('h3', 'h8')")}
        fates = sorted((p, f) for p, f in pair_fates.items() if p in positions)
        assert [f for _, f in fates] == ["APPLIED", "SUPERSEDED", "DUPLICATE"]


# --- a repeated event_id: DUPLICATE or DUPLICATE_EVENT_ID_CONFLICT, alike in both engines ---------

def _ledger_value(amount: str = '"10"', envelope_extra: str = "") -> bytes:
    return ('{"event_id": "e1", "event_type": "LedgerEntryUpserted"' + envelope_extra + ', "payload": {"tx_id": "t1",'
            ' "wallet_id": "w1", "entry_type": "DEBIT", "amount": ' + amount + ', "currency": "KRW",'
            ' "status": "POSTED"}}').encode()


# Payloads are equal when their `contract.payload_digest` is (canonical JSON, numbers exactly as
# sent), in both engines, whether or not the log row could keep a jsonb `document`. Until aa802af
# the SQL engine digested the jsonb text when there was one: the last two cases disagreed.
@pytest.mark.parametrize(("first", "second", "fate"), [
    pytest.param(_ledger_value(), _ledger_value(envelope_extra=', "occurred_at": "2026-02-05T10:00:00Z"'),
                 "DUPLICATE", id="same payload, another envelope"),
    pytest.param(_ledger_value(), _ledger_value(envelope_extra=', "note": "a\\u0000b"'),
                 "DUPLICATE", id="same payload, the second without a jsonb document"),
    pytest.param(_ledger_value("10"), _ledger_value("1e1"), "DEAD_LETTERED", id="10 and 1e1"),
])
def test_a_repeated_event_id_is_judged_alike_by_both_engines(
        pg_base_url: str, template: str, first: bytes, second: bytes, fate: str) -> None:
    with fresh_database(pg_base_url, template) as admin:
        url = app_url(admin)
        append_all(url, appends([Delivery(LEDGER_TOPIC, "t1", first, False),
                                 Delivery(LEDGER_TOPIC, "t1", second, False)])[0])
        project(url, SQL_ENGINE, 10)
        by_sql = contents(url)
        reset_projections(admin)
        project(url, PYTHON_ENGINE, 10)
        by_python = contents(url)
        assert_same(by_sql, by_python)
        assert [r["fate"] for r in by_python["ledger_entries v1 fates"]] == ["APPLIED", fate]
