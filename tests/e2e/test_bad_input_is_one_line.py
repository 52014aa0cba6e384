"""Every bad setting, file or argument gets one line on stderr and exit 2, before any work
starts, from the real `bo` command (issue 20): never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def run_bo(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BO_")}
    return subprocess.run([sys.executable, "-m", "bo", *args], env={**clean, **env}, capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize(("args", "env", "line"), [
    (["publish", "/nonexistent"], {"BO_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9"},
     "bo: /nonexistent: cannot be read (No such file or directory)"),
    (["publish", "/"], {"BO_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9"}, "bo: /: is a folder, not a file"),
    (["backfill", "/nonexistent.jsonl"], {}, "bo: /nonexistent.jsonl: cannot be read (No such file or directory)"),
    (["log", "verify", "--checkpoints", "/nonexistent"], {}, "bo: /nonexistent: no such folder"),
    (["projections", "status"], {"BO_INGEST_BATCH_SIZE": "abc"},
     "bo: BO_INGEST_BATCH_SIZE='abc': Input should be a valid integer, unable to parse string as an integer"),
    (["projections", "status"], {"BO_ENV": "staging"}, "bo: BO_ENV='staging': Input should be 'local', 'dev' or 'prod'"),
    (["projections", "status"], {"BO_DATABASE_URL": "postgresql://bo@127.0.0.1:notaport/bo"},
     "bo: BO_DATABASE_URL: the port 'notaport' is not a number from 1 to 65535"),
    (["ingest"], {}, "bo: set BO_KAFKA_BOOTSTRAP_SERVERS (for example from `bo dev-broker`)"),
    (["publish", "/dev/null"], {}, "bo: set BO_KAFKA_BOOTSTRAP_SERVERS (for example from `bo dev-broker`)"),
])
def test_a_bad_setting_file_or_argument_is_one_line_and_exit_2(args: list[str], env: dict[str, str], line: str,
                                                                tmp_path: Path) -> None:
    done = run_bo(args, {"BO_HOME": str(tmp_path), **env})
    assert (done.returncode, done.stderr) == (2, line + "\n"), done.stderr
    assert not (tmp_path / "pgdata").exists(), "refused before any database was started"
