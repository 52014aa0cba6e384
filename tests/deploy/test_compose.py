"""docker-compose.yml, checked here since no container engine runs on the build machines.

The file must be right the first time a user runs `docker compose up`: it validates against
the Compose specification's schema (check-jsonschema's vendored copy), every name it refers
to exists, its ports and variables are the README's, its bo services use bo's real commands
and settings, and each connects with the login of its own group that the migrations grant.
"""

from __future__ import annotations

import re
import subprocess
import sys
from typing import Any

import yaml

from bo.cli import _parser
from bo.settings import Settings
from tests.conftest import REPO

COMPOSE = REPO / "docker-compose.yml"
BO_SERVICES = ("ingest", "project", "api")  # long-running
# The standard OpenTelemetry variables bo's tracing reads (telemetry/tracing.py), and the probe's URL.
OTHER_VARIABLES = {"OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SERVICE_NAME", "BO_PROBE_URL"}


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def bo_services() -> dict[str, dict[str, Any]]:
    return {name: s for name, s in compose()["services"].items() if "build" in s}


def test_the_file_validates_against_the_compose_specification() -> None:
    checked = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec",
                              str(COMPOSE)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_every_service_has_an_image_or_a_build_and_known_dependencies() -> None:
    services = compose()["services"]
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown {dependency}"


def test_every_mounted_file_exists_in_the_repository() -> None:
    for name, service in compose()["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (REPO / source).exists(), f"{name} mounts {source}, which is not in the repository"


def test_bo_services_only_use_settings_bo_understands() -> None:
    known = {f"BO_{field.upper()}" for field in Settings.model_fields} | OTHER_VARIABLES
    for name, service in bo_services().items():
        for variable in service.get("environment", {}):
            assert variable in known, f"{name} sets {variable}, which bo does not read"


def test_bo_commands_and_their_options_exist_in_the_cli() -> None:
    parser = _parser()
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    for name, service in bo_services().items():
        command = service["command"]
        assert command[0] in commands, name
        options = {o for action in commands[command[0]]._actions for o in action.option_strings}
        for word in command[1:]:
            if word.startswith("--"):
                assert word in options, f"{name}: bo {command[0]} has no {word}"


def test_long_running_bo_services_have_healthchecks_on_their_own_ports_and_restart() -> None:
    for name in BO_SERVICES:
        service = compose()["services"][name]
        assert service["restart"] == "unless-stopped", name
        assert service["read_only"] is True and "/tmp" in service["tmpfs"], name
        test = service["healthcheck"]["test"]
        assert test[:4] == ["CMD", "python", "-m", "bo.probe"], name
        port = re.search(r":(\d+)/", test[4])
        assert port, test
        command = service["command"]
        served = {command[i + 1] for i, word in enumerate(command) if word == "--health-port"}
        served |= {command[command.index("--bind") + 1].rsplit(":", 1)[1]} if "--bind" in command else set()
        assert port.group(1) in served, f"{name} probes port {port.group(1)}, which it does not serve"


def login(url: str) -> str:
    return url.split("://")[1].split(":")[0]


def test_each_service_connects_with_a_login_in_its_own_group_never_as_the_owner() -> None:
    services = compose()["services"]
    owner = login(services["migrate"]["environment"]["BO_MIGRATION_DATABASE_URL"])
    expected = {"ingest": "bo_ingest_svc", "project": "bo_projector_svc", "api": "bo_api_svc"}
    for name, role in expected.items():
        assert login(services[name]["environment"]["BO_DATABASE_URL"]) == role, name
        assert role != owner
    init = (REPO / "deploy" / "postgres-init" / "01-app-role.sql").read_text()
    migration = (REPO / "migrations" / "versions" / "0006_service_roles.py").read_text()
    for group in ("bo_ingest", "bo_projector", "bo_api", "bo_operator"):
        assert f"'{group}'" in init, f"the init script makes no login in {group}"
        assert f'"{group}"' in migration or f"'{group}'" in migration, f"migration 0006 makes no {group}"


def test_prometheus_scrapes_the_metrics_port_each_bo_service_serves() -> None:
    config = yaml.safe_load((REPO / "deploy" / "prometheus" / "prometheus.yml").read_text())
    targets = {t for job in config["scrape_configs"] for c in job["static_configs"] for t in c["targets"]}
    services = compose()["services"]
    for name in BO_SERVICES:
        command = services[name]["command"]
        port = command[command.index("--metrics-port") + 1]
        assert f"{name}:{port}" in targets, f"Prometheus does not scrape {name}:{port}"
    for target in targets:
        assert target.split(":")[0] in services, f"Prometheus scrapes {target}, which is no service"


def test_traces_go_to_the_collector_the_stack_runs() -> None:
    services = compose()["services"]
    collector = yaml.safe_load((REPO / "deploy" / "otel" / "collector.yaml").read_text())
    port = collector["receivers"]["otlp"]["protocols"]["http"]["endpoint"].rsplit(":", 1)[1]
    for name in BO_SERVICES:
        env = services[name]["environment"]
        assert env["OTEL_TRACES_EXPORTER"] == "otlp"
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == f"http://otel-collector:{port}"
    assert "otel-collector" in services


def test_the_api_trusts_the_stack_issuer_and_the_issuer_signs_for_that_issuer_and_audience() -> None:
    import json

    services = compose()["services"]
    env = services["api"]["environment"]
    config = json.loads((REPO / "deploy" / "oidc" / "oidc.json").read_text())
    callback = next(c for c in config["tokenCallbacks"] if env["BO_OIDC_ISSUER"].endswith("/" + c["issuerId"]))
    for mapping in callback["requestMappings"]:
        assert mapping["claims"]["iss"] == env["BO_OIDC_ISSUER"]
        assert env["BO_OIDC_AUDIENCE"] in mapping["claims"]["aud"]
    issuer_host = env["BO_OIDC_ISSUER"].split("//")[1].split(":")[0]
    assert issuer_host in services


def host_ports() -> dict[str, set[str]]:
    """service → the host ports it publishes."""
    ports: dict[str, set[str]] = {}
    for name, service in compose()["services"].items():
        for spec in service.get("ports", []):
            ports.setdefault(name, set()).add(spec.split(":")[-2])
    return ports


def test_published_ports_are_loopback_only_and_the_readme_lists_each() -> None:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## The compose stack", 1)[1].split("\n## ", 1)[0]
    listed = {(m.group(1), m.group(2)) for m in re.finditer(r"^\| `([a-z-]+)` \| (\d+) \|", section, re.MULTILINE)}
    published = {(name, port) for name, ports in host_ports().items() for port in ports}
    assert listed == published
    for name, service in compose()["services"].items():
        for spec in service.get("ports", []):
            assert spec.startswith("127.0.0.1:"), f"{name} publishes {spec} beyond this machine"


def test_every_bo_variable_the_stack_sets_is_documented_in_the_readme() -> None:
    readme = (REPO / "README.md").read_text()
    for name, service in bo_services().items():
        for variable in service.get("environment", {}):
            if variable.startswith("BO_"):
                assert f"`{variable}`" in readme, f"{name} sets {variable}, which the README does not document"
