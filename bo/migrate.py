"""Applying the Alembic migrations from code (`bo migrate`, tests, `bo demo`)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

import migrations
from eventstore.db import SchemaExpectation, check_schema, connect, require_supported_server

MIGRATIONS_DIR = Path(migrations.__file__).resolve().parent


def alembic_config(database_url: str) -> Config:
    config = Config(str(MIGRATIONS_DIR / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["url"] = database_url
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Apply the migrations up to `revision`, on a supported server whose migrations this code knows."""
    check_before_migrating(database_url)
    command.upgrade(alembic_config(database_url), revision)


def check_before_migrating(database_url: str) -> None:
    """Refuse, in one line, a server that is too old or a database migrated by newer code."""
    with connect(database_url) as conn:
        require_supported_server(conn)
        check_schema(conn, schema_expectation(), allow_behind=True)


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)


def head_revision() -> str:
    head = _scripts().get_current_head()
    assert head is not None
    return head


def schema_expectation() -> SchemaExpectation:
    """The code's head revision and every revision it ships (for `eventstore.db.check_schema`)."""
    return SchemaExpectation(head_revision(), frozenset(s.revision for s in _scripts().walk_revisions()))


def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config("postgresql://unused"))
