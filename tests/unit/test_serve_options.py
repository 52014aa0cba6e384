"""How `bo serve` configures gunicorn from the settings."""

from __future__ import annotations

from bo.serve import gunicorn_options
from bo.settings import Settings


def test_one_thread_runs_sync_workers() -> None:
    options = gunicorn_options(Settings(api_threads=1), "127.0.0.1:0", workers=2)
    assert (options["worker_class"], options["threads"], options["workers"]) == ("sync", 1, 2)


def test_more_threads_run_gthread_workers() -> None:
    options = gunicorn_options(Settings(api_threads=8), "127.0.0.1:0", workers=2)
    assert (options["worker_class"], options["threads"]) == ("gthread", 8)
