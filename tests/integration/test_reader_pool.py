"""The API's pool checks a connection before lending it only when it sat idle (eventstore.db.open_pool):
a connection in steady use costs no extra round trip, one broken while idle is replaced unseen."""

from __future__ import annotations

import time

import psycopg
import pytest

from eventstore.db import open_pool


def terminate(admin_url: str, pid: int) -> None:
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    time.sleep(0.2)  # the backend is gone before the next statement


def test_a_connection_given_back_just_now_is_lent_again_without_a_round_trip(
        admin_database_url: str, database_url: str) -> None:
    pool = open_pool(database_url, min_size=1, max_size=1, name="fresh")
    try:
        with pool.connection() as conn:
            conn.execute("SELECT 1")
            pid = conn.info.backend_pid
        terminate(admin_database_url, pid)
        with pytest.raises(psycopg.OperationalError), pool.connection() as conn:  # not checked: it fails
            conn.execute("SELECT 1")
        with pool.connection() as conn:  # the broken one was discarded
            assert conn.execute("SELECT 1").fetchone() == (1,)
            assert conn.info.backend_pid != pid
    finally:
        pool.close()


def test_a_connection_broken_while_idle_is_replaced_before_it_is_lent(
        admin_database_url: str, database_url: str) -> None:
    pool = open_pool(database_url, min_size=1, max_size=1, name="idle")
    try:
        with pool.connection() as conn:
            pid = conn.info.backend_pid
        terminate(admin_database_url, pid)
        time.sleep(1.0)  # idle for longer than a connection stays "just given back"
        with pool.connection() as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
            assert conn.info.backend_pid != pid
    finally:
        pool.close()
