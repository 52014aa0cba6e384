"""Every revision downgrades: upgrade → downgrade → upgrade leaves a working schema."""

from __future__ import annotations

import psycopg

from bo.migrate import downgrade, head_revision, upgrade


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
