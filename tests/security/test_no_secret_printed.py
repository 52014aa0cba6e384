"""No password, token or key is printed on any failure path: every output of the real `bo`
commands and of a real `bo serve` is searched for the secrets the test gave them (issue 20)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psycopg
import pytest

from tests.conftest import free_port
from tests.stack import bo, dev_token, logged_port, wait_for_answer

PASSWORD = "s3cret-never-printed"
CURSOR_SECRET = "cursor-secret-never-printed-0123456789"


def run_bo(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bo", *args], env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)


def with_password(url: str) -> str:
    return psycopg.conninfo.make_conninfo(url, password=PASSWORD)


def assert_no_secret(*outputs: str) -> None:
    for output in outputs:
        assert PASSWORD not in output and CURSOR_SECRET not in output, output


@pytest.mark.parametrize(("url", "expected"), [
    (f"postgresql+psycopg://bo:{PASSWORD}@127.0.0.1:5432/bo", "BO_DATABASE_URL: the scheme 'postgresql+psycopg'"),
    (f"postgresql://bo:{PASSWORD}@127.0.0.1:notaport/bo", "BO_DATABASE_URL: the port 'notaport' is not a number"),
    (f"host=127.0.0.1 password={PASSWORD} dbname", "BO_DATABASE_URL: not a PostgreSQL connection URL"),
])
@pytest.mark.parametrize("command", [["projections", "status"], ["serve", "--bind", "127.0.0.1:0"],
                                     ["log", "verify"], ["ingest"]])
def test_a_bad_database_url_is_one_line_exit_2_and_never_printed(url: str, expected: str,
                                                                  command: list[str]) -> None:
    done = run_bo(command, {"BO_DATABASE_URL": url, "BO_CURSOR_SECRET": CURSOR_SECRET})
    assert_no_secret(done.stdout, done.stderr)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"bo: {expected}") and done.stderr.count("\n") == 1, done.stderr


def test_an_unreachable_database_with_a_password_is_exit_4_and_never_printed() -> None:
    url = f"postgresql://bo:{PASSWORD}@127.0.0.1:{free_port()}/bo?connect_timeout=1"
    done = run_bo(["projections", "status"], {"BO_DATABASE_URL": url, "BO_CURSOR_SECRET": CURSOR_SECRET})
    assert_no_secret(done.stdout, done.stderr)
    assert done.returncode == 4 and done.stderr.startswith("bo: the database is unavailable"), done.stderr


def test_a_refused_login_with_a_password_is_exit_3_and_never_printed(database_url: str) -> None:
    url = with_password(psycopg.conninfo.make_conninfo(database_url, user="no_such_login"))
    for command in (["projections", "status"], ["log", "verify"], ["migrate"]):
        done = run_bo(command, {"BO_DATABASE_URL": url, "BO_MIGRATION_DATABASE_URL": url,
                                "BO_CURSOR_SECRET": CURSOR_SECRET})
        assert_no_secret(done.stdout, done.stderr)
        assert done.returncode == 3, done.stderr


def test_a_token_in_a_query_string_is_not_in_the_servers_log(database_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "BO_DATABASE_URL": with_password(database_url), "BO_HOME": str(tmp_path / "home"),
           "BO_CURSOR_SECRET": CURSOR_SECRET, "BO_ENV": "local"}
    token = dev_token(env, "ADMIN_READ")
    log = tmp_path / "serve.log"
    server = bo(["serve", "--bind", "127.0.0.1:0", "--workers", "1"], env, log)
    try:
        base = f"http://127.0.0.1:{logged_port(log, server, 'Listening at: ')}"
        wait_for_answer(base + "/readyz")
        for path in (f"/admin/tx/tx-x?access_token={token}", f"/admin/projections?password={PASSWORD}"):
            try:
                urllib.request.urlopen(base + path, timeout=10)
            except urllib.error.HTTPError as err:
                assert err.code == 401
        time.sleep(0.5)  # the access lines are written after the answers
    finally:
        server.terminate()
        server.wait(20)
    written = log.read_text()
    assert "GET /admin/tx/tx-x?access_token=***" in written
    assert token not in written and token.split(".")[1] not in written
    assert_no_secret(written)
