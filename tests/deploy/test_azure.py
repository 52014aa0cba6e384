"""deploy/azure (Terraform, azurerm), checked without a cloud: every file parses as HCL
(python-hcl2), and the properties that matter hold in what is written:

- no public database access, and Entra ID the only way in;
- TLS 1.2 or newer wherever bo connects or is connected to;
- a managed identity for every app and job, for the image, the secrets, PostgreSQL and Event
  Hubs: no password, admin user or key in the apps' configuration;
- the API's ingress is the only public endpoint;
- no secret is a variable or an output, and every checkov skip says why.

checkov itself runs in `.ci/check-deploy`.
"""

from __future__ import annotations

import re
from typing import Any

import hcl2
import pytest

from bo.settings import Settings
from tests.conftest import REPO

AZURE = REPO / "deploy" / "azure"


def clean(value: Any) -> Any:
    """python-hcl2's tree without its quoting and bookkeeping: `"x"` → `x`, blocks as lists of dicts."""
    if isinstance(value, dict):
        return {clean_key(k): clean(v) for k, v in value.items() if k not in ("__is_block__", "__comments__")}
    if isinstance(value, list):
        return [clean(v) for v in value]
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def clean_key(key: str) -> str:
    return key[1:-1] if len(key) >= 2 and key[0] == key[-1] == '"' else key


def load_all() -> dict[str, list[Any]]:
    merged: dict[str, list[Any]] = {}
    for path in sorted(AZURE.glob("*.tf")):
        with path.open() as handle:
            tree = clean(hcl2.load(handle))
        for kind, items in tree.items():
            merged.setdefault(kind, []).extend(items)
    return merged


@pytest.fixture(scope="module")
def tf() -> dict[str, list[Any]]:
    return load_all()


def resources(tf: dict[str, list[Any]], kind: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for item in tf.get("resource", []):
        for name, body in item.get(kind, {}).items():
            found[name] = body
    return found


def one(tf: dict[str, list[Any]], kind: str, name: str) -> dict[str, Any]:
    return resources(tf, kind)[name]


def variable_default(tf: dict[str, list[Any]], name: str) -> Any:
    for item in tf["variable"]:
        if name in item:
            return item[name].get("default")
    raise KeyError(name)


def local(tf: dict[str, list[Any]], name: str) -> Any:
    for item in tf["locals"]:
        if name in item:
            return item[name]
    raise KeyError(name)


APPS = ("ingest", "project", "api")


def test_every_file_parses_and_names_the_azurerm_provider(tf: dict[str, list[Any]]) -> None:
    assert len(list(AZURE.glob("*.tf"))) >= 8
    providers = tf["terraform"][0]["required_providers"][0]
    assert providers["azurerm"]["source"] == "hashicorp/azurerm"


def test_the_database_has_no_public_access_and_takes_entra_id_only(tf: dict[str, list[Any]]) -> None:
    server = one(tf, "azurerm_postgresql_flexible_server", "bo")
    assert server["public_network_access_enabled"] is False
    assert "azurerm_subnet.postgres.id" in server["delegated_subnet_id"]
    auth = server["authentication"][0]
    assert auth["active_directory_auth_enabled"] is True and auth["password_auth_enabled"] is False
    assert "administrator_password" not in server and "administrator_login" not in server
    assert server["backup_retention_days"] == "${var.postgres_backup_retention_days}"
    assert server["geo_redundant_backup_enabled"] == "${var.postgres_geo_redundant_backup}"
    high_availability = next(d["high_availability"] for d in server["dynamic"] if "high_availability" in d)
    assert "var.postgres_high_availability" in str(high_availability["for_each"])


def test_tls_1_2_or_newer_everywhere(tf: dict[str, list[Any]]) -> None:
    configs = {c["name"]: c["value"] for c in resources(tf, "azurerm_postgresql_flexible_server_configuration").values()}
    assert configs["ssl_min_protocol_version"] == "TLSv1.2" and configs["require_secure_transport"] == "on"
    assert one(tf, "azurerm_eventhub_namespace", "bo")["minimum_tls_version"] == "1.2"
    assert one(tf, "azurerm_container_app", "api")["ingress"][0]["allow_insecure_connections"] is False
    urls = local(tf, "database_url")
    assert "sslmode=verify-full" in str(urls)
    assert local(tf, "common_env")["BO_KAFKA_BOOTSTRAP_SERVERS"].endswith(":9093")  # Event Hubs' TLS endpoint


def test_every_app_and_job_runs_under_its_own_managed_identity_for_everything(tf: dict[str, list[Any]]) -> None:
    apps = resources(tf, "azurerm_container_app")
    jobs = resources(tf, "azurerm_container_app_job")
    assert set(apps) == set(APPS) and set(jobs) == {"migrate", "operator"}
    for name, body in {**apps, **jobs}.items():
        identity = body["identity"][0]
        assert identity["type"] == "UserAssigned"
        assert identity["identity_ids"] == [f'${{azurerm_user_assigned_identity.service["{name}"].id}}']
        registry = body["registry"][0]
        assert registry["identity"] == identity["identity_ids"][0] and "password_secret_name" not in registry
        for secret in body.get("secret", []):
            if "key_vault_secret_id" in secret:
                assert secret["identity"] == identity["identity_ids"][0], (name, secret["name"])
            else:  # KEDA's SASL settings, which are not secret
                assert secret["value"] in ("plaintext", "$ConnectionString", "enable"), (name, secret["name"])
    assert one(tf, "azurerm_container_registry", "bo")["admin_enabled"] is False
    env = local(tf, "common_env")
    assert env["BO_DATABASE_AUTH"] == "entra" and env["BO_KAFKA_AUTH"] == "entra"
    assert set(local(tf, "services")) == {*APPS, "migrate", "operator"}


def test_the_apis_ingress_is_the_only_public_endpoint(tf: dict[str, list[Any]]) -> None:
    apps = resources(tf, "azurerm_container_app")
    with_ingress = {name for name, body in apps.items() if body.get("ingress")}
    assert with_ingress == {"api"}
    assert apps["api"]["ingress"][0]["external_enabled"] is True
    assert one(tf, "azurerm_eventhub_namespace", "bo")["public_network_access_enabled"] is False
    assert one(tf, "azurerm_postgresql_flexible_server", "bo")["public_network_access_enabled"] is False
    registry = one(tf, "azurerm_container_registry", "bo")
    assert registry["public_network_access_enabled"] == "${var.registry_public_network_access}"
    assert variable_default(tf, "registry_public_network_access") is False
    assert registry["network_rule_set"][0]["default_action"] == "Deny"
    vault = one(tf, "azurerm_key_vault", "bo")
    assert vault["public_network_access_enabled"] == "${length(var.operator_ip_ranges) > 0}"
    assert variable_default(tf, "operator_ip_ranges") == []
    assert vault["network_acls"][0]["default_action"] == "Deny"
    nsg_rules = one(tf, "azurerm_network_security_group", "apps")["security_rule"]
    from_internet = [r for r in nsg_rules if r["source_address_prefix"] == "Internet"]
    assert [r.get("destination_port_range") for r in from_internet] == ["443"]


def test_no_secret_is_a_variable_or_an_output_and_the_cursor_key_never_enters_the_state(
        tf: dict[str, list[Any]]) -> None:
    secretish = re.compile(r"password|secret|connection_string|primary_key|access_key|token", re.IGNORECASE)
    for item in tf["variable"]:
        for name in item:
            assert not secretish.search(name), f"variable {name} looks like a secret"
    for item in tf["output"]:
        for name, body in item.items():
            assert not secretish.search(str(body["value"])), f"output {name} gives a secret"
    cursor = one(tf, "azurerm_key_vault_secret", "cursor")
    assert "value" not in cursor and cursor["value_wo"] == "${ephemeral.random_password.cursor.result}"


def test_the_pipeline_logs_in_without_a_secret_and_may_only_deploy(tf: dict[str, list[Any]]) -> None:
    federated = one(tf, "azurerm_federated_identity_credential", "deployer")
    assert federated["issuer"] == "https://token.actions.githubusercontent.com"
    assert federated["subject"] == "repo:${var.github_repository}:environment:${var.environment}"
    role = one(tf, "azurerm_role_definition", "deployer")
    actions = role["permissions"][0]["actions"]
    assert actions and all(a.startswith(("Microsoft.App/", "Microsoft.ManagedIdentity/")) and "*" not in a
                           for a in actions), actions
    assert not any(a.endswith("/delete") for a in actions)
    assert one(tf, "azurerm_role_assignment", "deployer_pushes")["role_definition_name"] == "AcrPush"


def test_prod_can_pull_the_image_dev_ran_and_the_api_can_use_a_read_replica(tf: dict[str, list[Any]]) -> None:
    registry = one(tf, "azurerm_container_registry", "bo")
    assert registry["count"] == "${var.shared_registry == null ? 1 : 0}"
    assert registry["export_policy_enabled"] == registry["public_network_access_enabled"]
    replica = one(tf, "azurerm_postgresql_flexible_server", "replica")
    assert replica["create_mode"] == "Replica" and replica["public_network_access_enabled"] is False
    assert "BO_READ_DATABASE_URL" in (AZURE / "containerapps.tf").read_text()


def test_liveness_does_not_restart_a_process_that_waits_out_a_database_outage(tf: dict[str, list[Any]]) -> None:
    for name in ("ingest", "project"):
        container = one(tf, "azurerm_container_app", name)["template"][0]["container"][0]
        assert container["liveness_probe"][0]["transport"] == "TCP"
        assert container["readiness_probe"][0]["path"] == "/healthz"


def test_every_checkov_skip_says_why() -> None:
    for path in AZURE.glob("*.tf"):
        for line in path.read_text().splitlines():
            if "checkov:skip" in line:
                assert re.search(r"#checkov:skip=CKV\w*_\d+:\S.{15,}", line), f"{path.name}: {line.strip()}"


def test_the_apps_are_told_only_settings_bo_reads_and_probe_the_ports_they_serve(tf: dict[str, list[Any]]) -> None:
    known = {f"BO_{field.upper()}" for field in Settings.model_fields}
    known |= {"OTEL_TRACES_EXPORTER", "OTEL_SERVICE_NAME", "APPLICATIONINSIGHTS_CONNECTION_STRING"}
    text = (AZURE / "containerapps.tf").read_text()
    for variable in set(re.findall(r"\b((?:BO|OTEL|APPLICATIONINSIGHTS)_[A-Z_]+)\s*=", text)) | set(
            re.findall(r'name\s*=\s*"((?:BO|OTEL|APPLICATIONINSIGHTS)_[A-Z_]+)"', text)):
        assert variable in known, f"deploy/azure sets {variable}, which bo does not read"
    for name, body in resources(tf, "azurerm_container_app").items():
        container = body["template"][0]["container"][0]
        args = container["args"]
        served = {args[i + 1] for i, word in enumerate(args) if word == "--health-port"}
        if "--bind" in args:
            served.add(args[args.index("--bind") + 1].rsplit(":", 1)[1])
        for probe in ("liveness_probe", "readiness_probe"):
            assert str(container[probe][0]["port"]) in served, (name, probe)


def test_each_service_logs_in_to_postgres_in_the_group_migration_0006_grants(tf: dict[str, list[Any]]) -> None:
    migration = (REPO / "migrations" / "versions" / "0006_service_roles.py").read_text()
    for name, service in local(tf, "services").items():
        if name != "migrate":
            assert f'"{service["group"]}"' in migration, name
    readme = (AZURE / "README.md").read_text()
    assert "pgaadauth_create_principal" in readme
    for group in ("bo_ingest", "bo_projector", "bo_api"):
        assert group in readme


def test_ingest_scales_on_consumer_lag_and_the_projector_runs_alone(tf: dict[str, list[Any]]) -> None:
    ingest = one(tf, "azurerm_container_app", "ingest")["template"][0]
    rule = ingest["custom_scale_rule"][0]
    assert rule["custom_rule_type"] == "kafka" and "lagThreshold" in rule["metadata"]
    assert rule["metadata"]["consumerGroup"] == "${local.common_env.BO_KAFKA_GROUP_ID}"
    project = one(tf, "azurerm_container_app", "project")["template"][0]
    assert project["min_replicas"] == project["max_replicas"] == 1


def test_the_readme_says_how_to_apply_it() -> None:
    readme = (AZURE / "README.md").read_text()
    for step in ("terraform init", "terraform plan", "terraform apply"):
        assert step in readme
