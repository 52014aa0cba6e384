"""Signed checkpoints of the log's and the audit trail's hash chains (`bo log checkpoint`).

A hash chain alone does not stop a superuser who edits a row and recomputes every later
hash. A checkpoint, like SQL Server's ledger digests or Certificate Transparency's signed
tree heads, records each chain's head (position or id, its row_hash, its time; for the audit
trail, the head of each of its lanes, migration 0007) at a moment,
signed with an Ed25519 key the database never sees, in a file the database cannot write.
`bo log verify --checkpoints DIR` then proves, for each checkpoint, that the row it names is
still there with the same hash (so nothing at or before it was rewritten, re-chained,
truncated or restored from an older backup: the head's hash commits to every row before
it), and that no later row claims an earlier time (a row inserted with an old date).

The key lives in `BO_HOME/checkpoint-key/private.pem` (0600), made on first use; in
production the checkpoints go to write-once storage (docs/security.md).
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import psycopg
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from api import audit_log
from eventstore import sql as log_sql

FORMAT: Final = 2  # 2: each chain's heads by lane, and the database's clock; 1 (one head per chain) still verifies
# A row may take its time just before a checkpoint and commit just after it; beyond this, a
# row in a lane that had no head at the checkpoint, dated before it, was inserted with an old date.
IN_FLIGHT_GRACE: Final = timedelta(seconds=30)


@dataclass(frozen=True, slots=True)
class Chain:
    """One hash chain a checkpoint covers (in lanes: the audit trail has eight, the log one),
    and the statements that find its rows again."""

    name: str
    key: str  # position or id
    time: str  # ingested_at or at
    heads: str  # (lane, key, row_hash, time) of each lane's last row
    lane_head: str
    row_hash_at: str
    first_earlier_after: str  # in the signed head's lane, after it
    first_earlier_elsewhere: str  # in any lane but the signed ones


CHAINS: Final = (
    Chain("log", "position", "ingested_at", log_sql.SELECT_CHECKPOINT_HEADS, log_sql.SELECT_LANE_HEAD,
          log_sql.SELECT_ROW_HASH_AT, log_sql.SELECT_FIRST_EARLIER_AFTER, log_sql.SELECT_FIRST_EARLIER_ELSEWHERE),
    Chain("audit", "id", "at", audit_log.SELECT_HEADS, audit_log.SELECT_LANE_HEAD, audit_log.SELECT_ROW_HASH_AT,
          audit_log.SELECT_FIRST_EARLIER_AFTER, audit_log.SELECT_FIRST_EARLIER_ELSEWHERE),
)


class CheckpointKey:
    def __init__(self, home: Path) -> None:
        path = Path(home).expanduser() / "checkpoint-key" / "private.pem"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            pem = Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass
            else:
                with os.fdopen(fd, "wb") as out:
                    out.write(pem)
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(loaded, Ed25519PrivateKey):
            raise ValueError(f"{path} is not an Ed25519 private key")
        self._private = loaded
        self.public: Ed25519PublicKey = loaded.public_key()
        raw = self.public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.key_id = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    def sign(self, body: dict[str, Any]) -> str:
        return base64.b64encode(self._private.sign(_canonical(body))).decode()

    def verifies(self, body: dict[str, Any], signature: str) -> bool:
        try:
            self.public.verify(base64.b64decode(signature), _canonical(body))
        except (InvalidSignature, ValueError):
            return False
        return True


def _canonical(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def write_checkpoint(conn: psycopg.Connection[Any], key: CheckpointKey, folder: Path) -> Path:
    """Sign both chains' heads as they are now and write them to a new read-only file in `folder`."""
    body: dict[str, Any] = {"format": FORMAT, "key_id": key.key_id, "at": datetime.now(UTC).isoformat()}
    with conn.transaction():  # one snapshot for every head, and the database's own clock
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        body["database_at"] = conn.execute("SELECT clock_timestamp()").fetchone()[0].isoformat()  # type: ignore[index]
        for chain in CHAINS:
            body[chain.name] = [{"lane": int(lane), chain.key: int(at), "row_hash": bytes(row_hash).hex(),
                                 chain.time: time.isoformat()}
                                for lane, at, row_hash, time in conn.execute(chain.heads).fetchall()]
    document = {**body, "signature": key.sign(body)}
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    path = folder / f"checkpoint-{stamp}.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
    with os.fdopen(fd, "w") as out:
        json.dump(document, out, indent=2, sort_keys=True)
    return path


@dataclass
class CheckpointReport:
    checked: int = 0
    problems: list[str] | None = None
    first_bad: dict[str, int] | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_checkpoints(conn: psycopg.Connection[Any], key: CheckpointKey, folder: Path) -> CheckpointReport:
    """Every checkpoint in `folder`: signed by `key`, and its rows still as signed."""
    report = CheckpointReport(problems=[], first_bad={})
    assert report.problems is not None and report.first_bad is not None
    files = sorted(folder.glob("checkpoint-*.json"))
    if not files:
        report.problems.append(f"no checkpoint in {folder}")
    for path in files:
        report.checked += 1
        try:
            document = json.loads(path.read_text())
            signature = document.pop("signature")
        except (ValueError, KeyError, AttributeError):
            report.problems.append(f"{path.name}: not a checkpoint file")
            continue
        if document.get("key_id") != key.key_id or not key.verifies(document, signature):
            report.problems.append(f"{path.name}: the signature is not the checkpoint key's (forged or altered)")
            continue
        for chain in CHAINS:
            _check_chain(conn, chain, document, path.name, report)
    conn.rollback()
    return report


def _signed_heads(document: dict[str, Any], chain: Chain) -> list[dict[str, Any]]:
    signed = document.get(chain.name)
    if signed is None:
        return []
    return [{**signed, "lane": 0}] if isinstance(signed, dict) else list(signed)  # format 1: one head


def _check_chain(conn: psycopg.Connection[Any], chain: Chain, document: dict[str, Any], name: str,
                 report: CheckpointReport) -> None:
    """Each signed head still there with its hash, and no row after the checkpoint dated before it.

    "Before it": for format 2, before the checkpoint's own database time less `IN_FLIGHT_GRACE`
    (or before the lane head's time, if later), in every lane; a lane quiet for weeks is held
    to the checkpoint's time, not to its old head's. Rows of lanes the checkpoint did not sign
    (empty then, or a lane the database invents later) are all held to it, by a query that
    names the signed lanes only: the database under suspicion is not asked which lanes exist.
    Format 1 signed one head and no database time: its head's time is the bound for every row.
    """
    heads = _signed_heads(document, chain)
    if "database_at" in document:
        bound: datetime | None = datetime.fromisoformat(document["database_at"]) - IN_FLIGHT_GRACE
        elsewhere, after, signed_lanes = bound, 0, sorted({int(head["lane"]) for head in heads})
    else:  # format 1: one chain then; every row after its head is held to the head's time
        bound = None
        elsewhere = datetime.fromisoformat(heads[0][chain.time]) if heads else None
        after, signed_lanes = (int(heads[0][chain.key]) if heads else 0), []
    for head in heads:
        _check_head(conn, chain, head, bound, name, report)
    if elsewhere is None:
        return
    earlier = conn.execute(chain.first_earlier_elsewhere,
                           {"lanes": signed_lanes, "after": after, chain.time: elsewhere}).fetchone()
    if earlier is not None and earlier[0] is not None:
        _report(report, chain, int(earlier[0]),
                f"{name}: {chain.name} {chain.key} {earlier[0]} (in a lane without a signed head) claims a time"
                f" before the checkpoint ({elsewhere.isoformat()}): inserted with an old date")


def _check_head(conn: psycopg.Connection[Any], chain: Chain, signed: dict[str, Any], bound: datetime | None,
                name: str, report: CheckpointReport) -> None:
    at, lane = int(signed[chain.key]), int(signed["lane"])
    row = conn.execute(chain.row_hash_at, {chain.key: at}).fetchone()
    if row is None:
        head = conn.execute(chain.lane_head, {"lane": lane}).fetchone()
        first_missing = int(head[0]) + 1 if head is not None and int(head[0]) < at else at
        ends = f"; the lane now ends at {chain.key} {int(head[0])}" if head is not None else ""
        _report(report, chain, first_missing, f"{name}: {chain.name} {chain.key} {at} is missing (lane {lane}:"
                                              f" truncated, or restored from an older backup){ends}")
    elif bytes(row[0]).hex() != signed["row_hash"]:
        _report(report, chain, at, f"{name}: {chain.name} {chain.key} {at} no longer has the signed hash: rows at or"
                                   " before it were rewritten and re-chained")
    signed_time = datetime.fromisoformat(signed[chain.time])
    limit = max(signed_time, bound) if bound is not None else signed_time
    earlier = conn.execute(chain.first_earlier_after, {"lane": lane, chain.key: at, chain.time: limit}).fetchone()
    if earlier is not None and earlier[0] is not None:
        _report(report, chain, int(earlier[0]),
                f"{name}: {chain.name} {chain.key} {earlier[0]}, after the checkpoint, claims a time before it"
                f" ({limit.isoformat()}): inserted with an old date")


def _report(report: CheckpointReport, chain: Chain, at: int, problem: str) -> None:
    assert report.problems is not None
    report.problems.append(problem)
    _first_bad(report, chain, at)


def _first_bad(report: CheckpointReport, chain: Chain, at: int) -> None:
    assert report.first_bad is not None
    report.first_bad[chain.name] = min(report.first_bad.get(chain.name, at), at)
