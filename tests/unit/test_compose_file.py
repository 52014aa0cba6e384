"""docker-compose.yml is checked here, since no Docker engine runs on the build machines."""

from __future__ import annotations

from typing import Any

import yaml

from bo.settings import Settings
from tests.conftest import REPO


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    return loaded


def test_every_service_has_an_image_or_a_build_and_known_dependencies() -> None:
    services = compose()["services"]
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown {dependency}"


def test_bo_services_only_use_settings_bo_understands() -> None:
    known = {f"BO_{field.upper()}" for field in Settings.model_fields}
    for name, service in compose()["services"].items():
        for variable in service.get("environment", {}) if "build" in service else {}:
            assert variable in known, f"{name} sets {variable}, which bo does not read"


def test_bo_commands_exist_in_the_cli() -> None:
    from bo.cli import _parser

    commands = set(_parser()._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    for name, service in compose()["services"].items():
        if "build" in service:
            assert service["command"][0] in commands, name


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
        assert group in migration, f"migration 0006 grants nothing to {group}"
