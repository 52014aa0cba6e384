"""docs/runbooks/projection-lifecycle.md, step by step, through the real `bo` command.

Real processes throughout: `bo backfill` loads the log, `bo project` runs in the
background keeping ACTIVE and READY versions caught up, `bo serve` (gunicorn) answers
HTTP, and each runbook step is its `bo` sub-command with its exit code and output.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port
from tests.e2e.operator import bo, scalar, wait_for, write_dump

pytestmark = pytest.mark.e2e


def get(base: str, path: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {bo(env, 'dev-token', '--role', 'ADMIN_READ').stdout.strip()}"} if env else {}
    with urllib.request.urlopen(urllib.request.Request(base + path, headers=headers), timeout=10) as resp:
        body: dict[str, Any] = json.load(resp)
    return body


@pytest.fixture
def stack(database_url: str, tmp_path: Path) -> Iterator[tuple[dict[str, str], str]]:
    env = {**os.environ, "BO_DATABASE_URL": database_url, "BO_LOG_LEVEL": "INFO", "BO_HOME": str(tmp_path / "home")}
    first = tmp_path / "first.jsonl"
    write_dump(first, payments=400, seed=5)
    loaded = bo(env, "backfill", str(first))
    assert loaded.returncode == 0, loaded.stderr
    port = free_port()
    logs = (tmp_path / "project.log").open("wb"), (tmp_path / "serve.log").open("wb")
    project = subprocess.Popen([sys.executable, "-m", "bo", "project"], env=env, stdout=logs[0], stderr=logs[0])
    serve = subprocess.Popen([sys.executable, "-m", "bo", "serve", "--bind", f"127.0.0.1:{port}", "--workers", "1"],
                             env=env, stdout=logs[1], stderr=logs[1])
    base = f"http://127.0.0.1:{port}"
    try:
        def served() -> bool:
            try:
                return bool(get(base, "/healthz"))
            except OSError:
                return False
        wait_for(served, what="the API")
        yield env, base
    finally:
        for process in (project, serve):
            process.send_signal(signal.SIGTERM)
        for process in (project, serve):
            process.wait(timeout=30)
        for log in logs:
            log.close()


def test_runbook_rebuild_diff_activate_rollback_retire_and_dlq(
        stack: tuple[dict[str, str], str], database_url: str, tmp_path: Path) -> None:
    env, base = stack
    head = scalar(database_url, "SELECT max(position) FROM bo.event_log")
    wait_for(lambda: scalar(database_url, "SELECT notification_id FROM bo.projection_tracking"
                                          " WHERE application_name = 'ledger_entries:v1'") == head, what="v1")
    tx_id = scalar(database_url, "SELECT tx_id FROM bo.ledger_entries WHERE currency = 'USD' ORDER BY tx_id LIMIT 1")

    # 1. Rebuild: killed part-way, then run again, it resumes from its checkpoint.
    killed = subprocess.Popen([sys.executable, "-m", "bo", "rebuild", "ledger_entries", "--version", "2",
                               "--batch-size", "20"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for(lambda: (scalar(database_url, "SELECT coalesce(max(notification_id), 0) FROM bo.projection_tracking"
                                           " WHERE application_name = 'ledger_entries:v2'") or 0) > 0,
             what="the rebuild's first checkpoint")
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=10)
    at_kill = scalar(database_url, "SELECT notification_id FROM bo.projection_tracking"
                                   " WHERE application_name = 'ledger_entries:v2'")
    assert scalar(database_url, "SELECT status FROM bo.projectors WHERE name = 'ledger_entries' AND version = 2"
                  ) == "BUILDING"
    rebuilt = bo(env, "rebuild", "ledger_entries", "--version", "2")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "ledger_entries v2: READY" in rebuilt.stdout
    resumed_from = int(rebuilt.stdout.rsplit("resumed from ", 1)[1].rstrip(")\n"))
    assert resumed_from >= at_kill > 0
    assert "rebuild ledger_entries:v2 (log rows)" in rebuilt.stderr  # the progress bar's final line

    status = json.loads(bo(env, "projections", "status", "--json").stdout)
    v2 = next(v for v in status["projectors"] if (v["name"], v["version"]) == ("ledger_entries", 2))
    assert v2["status"] == "READY" and not v2["code_changed"] and v2["build_seconds"] is not None

    # 2. Diff: the same rows; v2 adds a column.
    diffed = bo(env, "projections", "diff", "ledger_entries", "1", "2")
    assert diffed.returncode == 0, diffed.stdout + diffed.stderr
    assert "0 added, 0 removed, 0 changed" in diffed.stdout and "columns only in v2: amount_minor" in diffed.stdout

    # 3. Activate: the API serves v2 with amount_minor.
    activated = bo(env, "projections", "activate", "ledger_entries", "2")
    assert activated.returncode == 0 and "v2 is active" in activated.stdout
    body = get(base, f"/admin/tx/{tx_id}", env)
    assert body["projection"]["version"] == 2 and body["amount_minor"] == int(float(body["amount"]) * 100 + 0.5)

    # New events while v2 serves: `bo project` keeps both versions caught up.
    second = tmp_path / "second.jsonl"
    write_dump(second, payments=50, seed=6)
    assert bo(env, "backfill", str(second)).returncode == 0
    head = scalar(database_url, "SELECT max(position) FROM bo.event_log")
    wait_for(lambda: scalar(database_url, "SELECT min(notification_id) FROM bo.projection_tracking"
                                          " WHERE application_name IN ('ledger_entries:v1', 'ledger_entries:v2')")
             == head, what="both versions to follow the log")

    # 4. Roll back: v1 again, atomically; then forward again.
    rolled = bo(env, "projections", "rollback", "ledger_entries")
    assert rolled.returncode == 0 and "rolled back to v1" in rolled.stdout
    body = get(base, f"/admin/tx/{tx_id}", env)
    assert body["projection"]["version"] == 1 and "amount_minor" not in body
    assert bo(env, "projections", "activate", "ledger_entries", "2").returncode == 0

    # 5. Retire v1: no longer maintained, refused as a rollback target.
    retired = bo(env, "projections", "retire", "ledger_entries", "1")
    assert retired.returncode == 0, retired.stderr
    refused = bo(env, "projections", "rollback", "ledger_entries")
    assert refused.returncode == 1 and "no previous version" in refused.stderr
    refused = bo(env, "projections", "retire", "ledger_entries", "2")
    assert refused.returncode == 1 and "ACTIVE" in refused.stderr

    # 6. Dead letters: listed, shown, replayed; genuinely invalid events stay open.
    listed = bo(env, "dlq", "list", "--projector", "ledger_entries")
    assert listed.returncode == 0 and "ledger_entries v2" in listed.stdout
    first_id = listed.stdout.split()[0]
    shown = bo(env, "dlq", "show", first_id)
    assert shown.returncode == 0 and json.loads(shown.stdout)["reason"]
    replayed = bo(env, "dlq", "replay", "--projector", "ledger_entries")
    assert replayed.returncode == 0, replayed.stderr
    assert "0 resolved" in replayed.stdout
