"""bo's Grafana dashboard, built with the grafana-foundation-sdk (Grafana 11.6 schema).

    python deploy/grafana/dashboard.py            # writes deploy/grafana/dashboards/bo.json
    python deploy/grafana/dashboard.py --check    # exits 1 when the committed JSON is not what this builds

Rows: the SLOs and their error-budget burn, the API, ingest, projections, pairing quality.
Queries read the recording rules of deploy/prometheus/rules/bo.yml where one exists, so the
dashboard and the alerts agree on every definition (docs/slo.md).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from grafana_foundation_sdk.builders.dashboard import (
    Dashboard,
    DatasourceVariable,
    Row,
    ThresholdsConfig,
)
from grafana_foundation_sdk.builders.prometheus import Dataquery
from grafana_foundation_sdk.builders.stat import Panel as Stat
from grafana_foundation_sdk.builders.timeseries import Panel as Timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef, Threshold, ThresholdsMode

OUT = Path(__file__).resolve().parent / "dashboards" / "bo.json"
DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
BUDGET = 0.05  # both SLOs: 95 % of events within the objective


def query(expr: str, legend: str = "") -> Dataquery:
    built = Dataquery().expr(expr).datasource(DATASOURCE)
    return built.legend_format(legend) if legend else built


def thresholds(*steps: tuple[float | None, str]) -> ThresholdsConfig:
    return ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps(
        [Threshold(value=value, color=color) for value, color in steps])


def timeseries(title: str, unit: str, *targets: Dataquery, width: int = 8, description: str = "") -> Timeseries:
    panel = Timeseries().title(title).unit(unit).span(width).height(8).datasource(DATASOURCE)
    if description:
        panel = panel.description(description)
    for target in targets:
        panel = panel.with_target(target)
    return panel


def stat(title: str, unit: str, target: Dataquery, limits: ThresholdsConfig, description: str) -> Stat:
    return (Stat().title(title).unit(unit).span(6).height(5).datasource(DATASOURCE).description(description)
            .thresholds(limits).with_target(target))


def build() -> Dashboard:
    latency_ok = thresholds((None, "green"), (0.2, "red"))
    freshness_ok = thresholds((None, "green"), (5.0, "red"))
    budget_left = thresholds((None, "red"), (0.25, "orange"), (0.5, "green"))
    return (
        Dashboard("bo: back office").uid("bo-overview").tags(["bo", "generated"]).refresh("30s")
        .time("now-6h", "now").timezone("utc")
        .with_variable(DatasourceVariable("datasource").label("Prometheus").type("prometheus"))

        .with_row(Row("SLOs and error budgets"))
        .with_panel(stat(
            "API p95 latency (/admin)", "s",
            query('max(bo:api_latency_seconds:p95_5m{route=~"/admin/.*"})'), latency_ok,
            "Slowest /admin route's p95 over 5 m. SLO: p95 <= 200 ms."))
        .with_panel(stat(
            "Freshness p95", "s", query("bo:freshness_seconds:p95_5m"), freshness_ok,
            "Kafka timestamp to projection commit, p95 over 5 m. SLO: p95 <= 5 s."))
        .with_panel(stat(
            "API latency budget left (30 d)", "percentunit",
            query(f"1 - avg_over_time(bo:api_latency_over_200ms:ratio_rate5m[30d]) / {BUDGET}"), budget_left,
            "Share of the month's error budget (5 % of requests over 200 ms) not yet spent."))
        .with_panel(stat(
            "Freshness budget left (30 d)", "percentunit",
            query(f"1 - avg_over_time(bo:freshness_over_5s:ratio_rate5m[30d]) / {BUDGET}"), budget_left,
            "Share of the month's error budget (5 % of rows later than 5 s) not yet spent."))
        .with_panel(timeseries(
            "API latency: burn rate", "x",
            query(f"bo:api_latency_over_200ms:ratio_rate5m / {BUDGET}", "5 m"),
            query(f"bo:api_latency_over_200ms:ratio_rate1h / {BUDGET}", "1 h"),
            query(f"bo:api_latency_over_200ms:ratio_rate6h / {BUDGET}", "6 h"),
            width=12, description="1 spends the budget in 30 days; pages at 14.4 (1 h and 5 m) and 6 (6 h and 30 m)."))
        .with_panel(timeseries(
            "Freshness: burn rate", "x",
            query(f"bo:freshness_over_5s:ratio_rate5m / {BUDGET}", "5 m"),
            query(f"bo:freshness_over_5s:ratio_rate1h / {BUDGET}", "1 h"),
            query(f"bo:freshness_over_5s:ratio_rate6h / {BUDGET}", "6 h"),
            width=12, description="1 spends the budget in 30 days; pages at 14.4 (1 h and 5 m) and 6 (6 h and 30 m)."))

        .with_row(Row("API"))
        .with_panel(timeseries("Requests by route and status", "reqps",
                               query("bo:api_requests:rate5m", "{{route}} {{status}}")))
        .with_panel(timeseries(
            "Latency by route", "s",
            query("bo:api_latency_seconds:p50_5m", "p50 {{route}}"),
            query("bo:api_latency_seconds:p95_5m", "p95 {{route}}"),
            query("bo:api_latency_seconds:p99_5m", "p99 {{route}}")))
        .with_panel(timeseries(
            "Errors, in flight, audit failures", "short",
            query("bo:api_errors:ratio_rate5m", "5xx share"),
            query('sum(bo_api_requests_in_flight{job="bo-api"})', "in flight"),
            query('sum(increase(bo_api_audit_write_failures_total{job="bo-api"}[5m]))', "audit failures (5 m)")))

        .with_row(Row("Ingest"))
        .with_panel(timeseries(
            "Messages and bytes appended", "short",
            query("bo:ingest_messages:rate5m", "messages/s {{topic}}"),
            query('sum by (topic) (rate(bo_ingest_bytes_total{job="bo-ingest"}[5m]))', "bytes/s {{topic}}")))
        .with_panel(timeseries(
            "Consumer lag (high watermark - offset stored in the database)", "short",
            query("bo:ingest_consumer_lag:sum", "{{topic}}"),
            query('max(bo_ingest_seconds_since_last_append{job="bo-ingest"})', "seconds since the last append")))
        .with_panel(timeseries(
            "Batch commits, redeliveries, rebalances", "short",
            query('histogram_quantile(0.95, sum by (le) (rate(bo_ingest_batch_commit_seconds_bucket{job="bo-ingest"}'
                  '[5m])))', "commit p95 (s)"),
            query('sum(rate(bo_ingest_redelivered_total{job="bo-ingest"}[5m]))', "redelivered/s"),
            query('sum(rate(bo_ingest_oversized_total{job="bo-ingest"}[5m]))', "oversized stubs/s"),
            query('sum by (kind) (increase(bo_ingest_rebalances_total{job="bo-ingest"}[15m]))', "rebalances {{kind}}")))

        .with_row(Row("Projections"))
        .with_panel(timeseries(
            "Rows applied per version", "short",
            query("bo:projector_events:rate5m", "{{projector}} v{{version}}"),
            query('histogram_quantile(0.95, sum by (le) (rate(bo_projector_batch_duration_seconds_bucket'
                  '{job="bo-project"}[5m])))', "batch p95 (s)")))
        .with_panel(timeseries(
            "Lag per version", "short",
            query('bo_projector_lag_events{job="bo-project"}', "rows {{projector}} v{{version}} ({{status}})"),
            query('bo_projector_lag_seconds{job="bo-project"}', "seconds {{projector}} v{{version}} ({{status}})")))
        .with_panel(timeseries(
            "Freshness and dead letters", "short",
            query('histogram_quantile(0.95, sum by (le) (rate(bo_freshness_kafka_seconds_bucket{job="bo-project"}'
                  '[5m])))', "p95 from the Kafka timestamp (s)"),
            query('histogram_quantile(0.95, sum by (le) (rate(bo_freshness_ingested_seconds_bucket{job="bo-project"}'
                  '[5m])))', "p95 from ingested_at (s)"),
            query('histogram_quantile(0.95, sum by (le) (rate(bo_ingest_delay_seconds_bucket{job="bo-ingest"}'
                  '[5m])))', "p95 ingest's share: ingested_at - Kafka timestamp (s)"),
            query('sum by (reason) (rate(bo_dead_letters_written_total{job="bo-project"}[5m]))',
                  "dead letters/s {{reason}}")))

        .with_row(Row("Pairing quality"))
        .with_panel(timeseries(
            "Incomplete pairs", "percentunit",
            query('bo_pair_incomplete_ratio{job="bo-project"}', "not COMPLETE"), width=8))
        .with_panel(timeseries(
            "Pairing latency (completed_at - first_seen_at)", "s",
            query('histogram_quantile(0.5, bo_pairing_latency_seconds_bucket{job="bo-project"})', "p50"),
            query('histogram_quantile(0.95, bo_pairing_latency_seconds_bucket{job="bo-project"})', "p95"), width=8))
        .with_panel(timeseries(
            "Events applied without a version", "short",
            query('bo_version_missing_cnt{job="bo-project"}', "version_missing_cnt"), width=8))
    )


def render() -> str:
    return json.dumps(build().build(), cls=JSONEncoder, indent=2, sort_keys=True) + "\n"


def main() -> int:
    text = render()
    if "--check" in sys.argv[1:]:
        if not OUT.exists() or OUT.read_text() != text:
            print(f"{OUT} is not what deploy/grafana/dashboard.py builds: run it", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
