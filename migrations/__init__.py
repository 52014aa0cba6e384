"""Alembic migrations: the only place bo's DDL is written. Imports nothing from the app."""
