"""deploy/grafana: the committed dashboard is what its builder makes, it loads with the
grafana-foundation-sdk's dashboard model unchanged, and every series it asks for exists."""

from __future__ import annotations

import importlib.util
import json
import re
from types import ModuleType
from typing import Any

import yaml
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import Dashboard

from tests.conftest import REPO

GRAFANA = REPO / "deploy" / "grafana"


def builder() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bo_dashboard", GRAFANA / "dashboard.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def committed() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((GRAFANA / "dashboards" / "bo.json").read_text())
    return loaded


def expressions() -> list[str]:
    return [t["expr"] for panel in committed()["panels"] for t in panel.get("targets", [])]


def test_the_committed_dashboard_is_what_the_builder_makes() -> None:
    assert (GRAFANA / "dashboards" / "bo.json").read_text() == builder().render(), \
        "run python deploy/grafana/dashboard.py"


def test_the_dashboard_loads_with_the_sdks_model_unchanged() -> None:
    data = committed()
    model = Dashboard.from_json(data)  # an unknown or misspelt field would not survive the round trip
    assert json.loads(json.dumps(model, cls=JSONEncoder)) == data
    assert data["uid"] == "bo-overview" and data["templating"]["list"][0]["type"] == "datasource"
    titles = [p["title"] for p in data["panels"] if p["type"] == "row"]
    assert titles == ["SLOs and error budgets", "API", "Ingest", "Projections", "Pairing quality"]


def test_every_series_the_dashboard_reads_is_recorded_or_exposed() -> None:
    rules = yaml.safe_load((REPO / "deploy" / "prometheus" / "rules" / "bo.yml").read_text())
    recorded = {rule["record"] for group in rules["groups"] for rule in group["rules"] if "record" in rule}
    source = "\n".join(path.read_text() for package in ("api", "eventstore", "projections", "telemetry")
                       for path in (REPO / package).rglob("*.py"))
    for expr in expressions():
        for name in re.findall(r"\b(bo[_:][A-Za-z0-9_:]+)", expr):
            if ":" in name:
                assert name in recorded, f"{name} is no recording rule of deploy/prometheus/rules/bo.yml"
                continue
            family = re.sub(r"_(total|bucket|count|sum)$", "", name)
            assert f'"{family}"' in source, f"{name}: no metric family {family} is declared in the code"


def test_compose_provisions_the_dashboard_and_the_data_source() -> None:
    services = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
    volumes = services["grafana"]["volumes"]
    assert "./deploy/grafana/dashboards:/var/lib/grafana/dashboards:ro" in volumes
    provider = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "bo.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    source = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    assert source["datasources"][0]["url"] == "http://prometheus:9090"
    assert "./deploy/prometheus:/etc/prometheus:ro" in services["prometheus"]["volumes"]
    ports = {name: services[name]["command"][services[name]["command"].index("--metrics-port") + 1]
             for name in ("api", "ingest", "project")}
    scrape = yaml.safe_load((REPO / "deploy" / "prometheus" / "prometheus.yml").read_text())["scrape_configs"]
    targets = {job["job_name"]: job["static_configs"][0]["targets"][0] for job in scrape}
    assert targets == {"bo-api": f"api:{ports['api']}", "bo-ingest": f"ingest:{ports['ingest']}",
                       "bo-project": f"project:{ports['project']}"}
