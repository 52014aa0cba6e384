"""What every bo process shares to be observed: Prometheus exposition (metrics.py) and
OpenTelemetry tracing (tracing.py)."""
