"""Kafka → bo.event_log: `decode` (pure) turns a message into a log record, `consumer` runs the loop."""
