"""Operator tools over the log: rebuild, diff, activate, rollback, dead-letter replay, backfill.

Imports `projections` and `eventstore`, never `api`. Its commands arrive with the
projection-lifecycle and event-log issues; the walking skeleton's operator commands
(`bo ingest`, `bo project`, `bo publish`) live in the `bo` composition root.
"""
