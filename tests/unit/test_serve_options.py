"""How `bo serve` configures gunicorn from the settings."""

from __future__ import annotations

from gunicorn.workers.gthread import ThreadWorker
from gunicorn.workers.sync import SyncWorker

from api.tokens import MAX_TOKEN_BYTES
from bo.serve import ProblemJsonRefusals, gunicorn_options
from bo.settings import Settings


def test_one_thread_runs_sync_workers() -> None:
    options = gunicorn_options(Settings(api_threads=1), "127.0.0.1:0", workers=2)
    assert issubclass(options["worker_class"], SyncWorker) and (options["threads"], options["workers"]) == (1, 2)


def test_more_threads_run_gthread_workers() -> None:
    options = gunicorn_options(Settings(api_threads=8), "127.0.0.1:0", workers=2)
    assert issubclass(options["worker_class"], ThreadWorker) and options["threads"] == 8


def test_workers_refuse_in_problem_json_and_read_headers_longer_than_a_token() -> None:
    for threads in (1, 8):
        options = gunicorn_options(Settings(api_threads=threads), "127.0.0.1:0", workers=1)
        assert issubclass(options["worker_class"], ProblemJsonRefusals)
        assert options["limit_request_field_size"] > MAX_TOKEN_BYTES + len("Authorization: Bearer ")
