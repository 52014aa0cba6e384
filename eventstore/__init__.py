"""The immutable event log `bo.event_log` and its only writer (ingest)."""
