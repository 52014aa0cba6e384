"""`bo backfill FILE`: append a dump to the log, streaming, idempotent, keeping bad lines.

A dump is JSON Lines of envelopes (`*.jsonl`, `*.json`, anything but `.csv`) or CSV with
a header row: one column per payload field plus `event_id`, `event_type`,
`schema_version` (and optionally `occurred_at`). Each physical line becomes one log row
with `source = 'backfill'` and coordinates (file identity, line number). The file
identity is its name and the SHA-256 of its content, so loading the same file twice
appends nothing new (progress is fenced exactly as Kafka offsets are), and a changed file
is a new dump. A line that cannot be read is still logged, as its raw bytes, and
reported by number; the projectors dead-letter it.

CSV cells are text; `version` and `schema_version` cells made of digits become
integers, and empty cells are left out. Quoted cells spanning lines are not supported:
such a record is reported as a bad line.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from eventstore import log
from eventstore.ingest.decode import decode
from eventstore.records import FileCoordinates, LogRecord

BACKFILL_GROUP = "backfill"
ENVELOPE_COLUMNS = ("event_id", "event_type", "schema_version", "occurred_at")
INTEGER_COLUMNS = ("version", "schema_version")
MAX_REPORTED_BAD_LINES = 1000


@dataclass
class BackfillReport:
    file_identity: str
    lines: int = 0
    appended: int = 0
    already_logged: int = 0
    bad_lines: list[int] = field(default_factory=list)
    bad_line_count: int = 0


def file_identity(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as dump:
        for chunk in iter(lambda: dump.read(1 << 20), b""):
            digest.update(chunk)
    return f"{path.name}@sha256:{digest.hexdigest()}"


def backfill(conn: psycopg.Connection[Any], path: Path, *, batch_size: int = 2000,
             progress: Callable[[int], None] | None = None) -> BackfillReport:
    report = BackfillReport(file_identity(path))
    batch: list[LogRecord] = []
    for record, readable, size in _records(path, report.file_identity):
        report.lines += 1
        if not readable:
            report.bad_line_count += 1
            if len(report.bad_lines) < MAX_REPORTED_BAD_LINES:
                report.bad_lines.append(record.coordinates.sequence)
        batch.append(record)
        if progress:
            progress(size)
        if len(batch) >= batch_size:
            _append(conn, batch, report)
            batch = []
    if batch:
        _append(conn, batch, report)
    return report


def _append(conn: psycopg.Connection[Any], batch: list[LogRecord], report: BackfillReport) -> None:
    result = log.append(conn, BACKFILL_GROUP, batch)
    report.appended += result.appended
    report.already_logged += result.redelivered


def _records(path: Path, identity: str) -> Iterator[tuple[LogRecord, bool, int]]:
    """(record, whether it could be read, bytes consumed) for every non-blank line."""
    is_csv = path.suffix.lower() == ".csv"
    with path.open("rb") as dump:
        header: list[str] | None = None
        for number, raw_line in enumerate(dump, start=1):
            line = raw_line.rstrip(b"\r\n")
            if not line.strip():
                continue
            if is_csv and header is None:
                header = _csv_cells(line.removeprefix(b"\xef\xbb\xbf")) or []  # a UTF-8 byte-order mark
                continue
            coordinates = FileCoordinates(identity, number)
            value, headers = (_csv_envelope(line, header or []) if is_csv else (line, []))
            record = decode(coordinates, None, value, headers)
            yield record, record.event_type is not None, len(raw_line)


def _csv_cells(line: bytes) -> list[str] | None:
    try:
        rows = list(csv.reader([line.decode("utf-8")], strict=True))
    except (UnicodeDecodeError, csv.Error):
        return None
    return rows[0] if len(rows) == 1 else None


def _csv_envelope(line: bytes, header: list[str]) -> tuple[bytes, list[tuple[str, bytes | None]]]:
    """The CSV record as a JSON envelope, or the raw line itself when it cannot be read."""
    marker: list[tuple[str, bytes | None]] = [("bo-backfill-format", b"csv")]
    cells = _csv_cells(line)
    if cells is None or len(cells) != len(header):
        return line, marker
    envelope: dict[str, Any] = {}
    payload: dict[str, Any] = {}
    for name, cell in zip(header, cells, strict=True):
        if cell == "":
            continue
        value: Any = int(cell) if name in INTEGER_COLUMNS and cell.isascii() and cell.isdigit() else cell
        (envelope if name in ENVELOPE_COLUMNS else payload)[name] = value
    envelope["payload"] = payload
    return json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode("utf-8"), marker
