"""Every revision downgrades and upgrades again; `bo migrate` upgrades a database with data in place."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
from alembic.script import ScriptDirectory
from psycopg import sql

from bo.embedded import app_role_url
from bo.migrate import alembic_config, downgrade, head_revision, upgrade
from tests.conftest import SAMPLES
from tests.integration.helpers import append_all, runner, sample_records


def tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        return {r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'bo'")}


def test_upgrade_downgrade_upgrade(empty_database_url: str) -> None:
    upgrade(empty_database_url)
    created = tables(empty_database_url)
    assert {"event_log", "ingest_offsets", "dead_letters", "projectors", "projection_tracking",
            "ledger_entries", "payment_orders", "payment_ledger_pairs",
            "ledger_entries_v1", "payment_orders_v1", "payment_ledger_pairs_v1"} <= created
    downgrade(empty_database_url, "base")
    assert tables(empty_database_url) == set()
    upgrade(empty_database_url)
    assert tables(empty_database_url) == created
    with psycopg.connect(empty_database_url) as conn:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    assert row is not None and row[0] == head_revision()


def test_stable_names_are_views_over_the_active_version(admin_database_url: str) -> None:
    with psycopg.connect(admin_database_url) as conn:
        views = dict(conn.execute(
            "SELECT table_name, view_definition FROM information_schema.views WHERE table_schema = 'bo'"
        ).fetchall())
        active = conn.execute("SELECT name, version FROM bo.projectors WHERE status = 'ACTIVE'").fetchall()
    assert set(views) == {"ledger_entries", "payment_orders", "payment_ledger_pairs"}
    for name, version in active:
        assert f"{name}_v{version}" in views[name]


def bo(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bo", *args], env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=300)


# What the head migration renamed: old table -> (new table, {old column: new column}).
RENAMED = {"access_audit": ("audit_log", {"actor": "subject", "client": "client_ip"})}
# Tables a migration drops on purpose: 0010 (fates are derived on read, decisions §95).
DROPPED = frozenset({"ledger_entries_v1_fates", "ledger_entries_v2_fates", "payment_orders_v1_fates",
                     "payment_ledger_pairs_v1_fates"})
# What the previous release wrote into them, one row each (the head's code writes none).
FILL_DROPPED = """
    INSERT INTO bo.{} (position, event_id, fate)
    SELECT position, event_id, 'APPLIED' FROM bo.event_log ORDER BY position LIMIT 1
"""


def table_rows(url: str) -> dict[str, list[dict[str, object]]]:
    """Every row of every table in schema bo, as column -> value."""
    with psycopg.connect(url, row_factory=psycopg.rows.dict_row) as conn:
        names = [r["table_name"] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'bo' AND table_type = 'BASE TABLE'")]
        return {name: conn.execute(sql.SQL("SELECT * FROM bo.{}").format(sql.Identifier(name))).fetchall()
                for name in names}


def kept(before: list[dict[str, object]], after: list[dict[str, object]], columns: dict[str, str]) -> bool:
    """Every row before is still there after, on the columns it had (renamed as the migration did)."""
    def key(row: dict[str, object], names: list[str]) -> str:
        return repr([row[n] for n in names])
    old = list(before[0]) if before else []
    new = [columns.get(c, c) for c in old]
    return sorted(key(r, old) for r in before) == sorted(key(r, new) for r in after)


def test_bo_migrate_upgrades_in_place_a_database_with_rows_in_every_table(
        empty_database_url: str, tmp_path: Path) -> None:
    """The previous release's schema (the head's down revision), with rows in every table, is
    migrated in place by `bo migrate`: nothing changes in the tables it had, the log verifies,
    and projection goes on."""
    admin = empty_database_url
    upgrade(admin)
    app = app_role_url(admin, role="bo_app_test")
    records = sample_records(SAMPLES)
    append_all(app, records)
    env = {"BO_HOME": str(tmp_path), "BO_DATABASE_URL": app, "BO_MIGRATION_DATABASE_URL": admin}
    assert bo(["rebuild", "ledger_entries", "--version", "2"], env).returncode == 0
    projection = runner(app)
    projection.catch_up()
    projection.datastore.close()
    with psycopg.connect(admin) as conn:
        conn.execute("INSERT INTO bo.audit_log (subject, method, path, status, result)"
                     " VALUES ('auditor', 'GET', '/x', 200, 'ALLOWED')")

    previous = ScriptDirectory.from_config(alembic_config(admin)).get_revision(head_revision()).down_revision
    assert isinstance(previous, str)
    downgrade(admin, previous)
    with psycopg.connect(admin) as conn:
        for name in sorted(DROPPED & set(table_rows(admin))):
            conn.execute(sql.SQL(FILL_DROPPED).format(sql.Identifier(name)))
    before = table_rows(admin)
    empty = sorted(name for name, rows in before.items() if not rows)
    assert not empty, f"populate these tables too, so that the upgrade is tried with data: {empty}"

    migrated = bo(["migrate"], env)
    assert migrated.returncode == 0, migrated.stderr
    after = table_rows(admin)
    assert not DROPPED & set(after), "the fates tables are dropped"
    for name, rows in before.items():
        if name in DROPPED:
            continue
        new_name, columns = RENAMED.get(name, (name, {}))
        assert kept(rows, after[new_name], columns), f"bo.{name} changed in the upgrade"
    verified = bo(["log", "verify"], env)
    assert verified.returncode == 0 and "log verified" in verified.stdout, verified.stdout + verified.stderr

    more = sample_records(SAMPLES, start_offset=len(records))  # redelivered upstream, at later offsets
    append_all(app, more)
    projection = runner(app)
    assert projection.catch_up() > 0
    projection.datastore.close()
    with psycopg.connect(app) as conn:
        head = conn.execute("SELECT max(position) FROM bo.event_log").fetchone()
        served = conn.execute("SELECT count(*) FROM bo.ledger_entries").fetchone()
    assert head is not None and head[0] == 2 * len(records)
    assert served is not None and served[0] == len(before["ledger_entries_v1"])

