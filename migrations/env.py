"""Alembic environment: runs the hand-written revisions online over psycopg 3.

The URL (any libpq form: `postgresql://…` or `key=value`) comes from the caller through
`config.attributes["url"]`, or from the alembic CLI as `-x url=…`.
"""

from __future__ import annotations

import psycopg
from alembic import context
from sqlalchemy import create_engine, pool

from eventstore.db import connection_kwargs


def run_migrations_online() -> None:
    url = context.config.attributes.get("url") or context.get_x_argument(as_dictionary=True)["url"]
    engine = create_engine(
        "postgresql+psycopg://", poolclass=pool.NullPool, creator=lambda: psycopg.connect(url, **connection_kwargs())
    )
    with engine.connect() as connection:
        context.configure(connection=connection, transaction_per_migration=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations_online()
