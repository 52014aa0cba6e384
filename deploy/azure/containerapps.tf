# The Container Apps environment in the VNet, and bo's three long-running services plus the
# migrate job, all from one image (the Dockerfile), each under its own managed identity:
# - api: the only ingress, external, HTTPS only; scales on concurrent requests;
# - ingest: no ingress; scales on the consumer group's lag (KEDA's Kafka scaler), at most one
#   replica per partition;
# - project: no ingress; exactly one replica (projection batches are serialised per version);
# - migrate: a manually started job (the CD pipeline starts it before moving the apps).
# The image is the pipeline's to change (by digest): Terraform sets the first one only.
resource "azurerm_container_app_environment" "bo" {
  name                               = "cae-${local.prefix}"
  location                           = azurerm_resource_group.bo.location
  resource_group_name                = azurerm_resource_group.bo.name
  log_analytics_workspace_id         = azurerm_log_analytics_workspace.bo.id
  infrastructure_subnet_id           = azurerm_subnet.apps.id
  infrastructure_resource_group_name = "rg-${local.prefix}-apps-infra"
  internal_load_balancer_enabled     = false # the API's ingress is public; no other app has one
  zone_redundancy_enabled            = var.zone_redundant
  tags                               = local.tags

  workload_profile {
    name                  = "Consumption"
    workload_profile_type = "Consumption"
  }
}

locals {
  postgres_host = azurerm_postgresql_flexible_server.bo.fqdn
  # Each service logs in as the PostgreSQL principal named after its identity, with its token.
  database_url = { for name, _ in local.services :
    name => "postgresql://${azurerm_user_assigned_identity.service[name].name}@${local.postgres_host}:5432/bo?sslmode=verify-full&sslrootcert=system"
  }
  # What every bo service is told (the README's settings); per-service values are added below.
  common_env = {
    BO_ENV                      = "prod"
    BO_DATABASE_AUTH            = "entra"
    BO_KAFKA_AUTH               = "entra"
    BO_KAFKA_BOOTSTRAP_SERVERS  = "${azurerm_eventhub_namespace.bo.name}.servicebus.windows.net:9093"
    BO_KAFKA_GROUP_ID           = "bo-ingest"
    BO_KAFKA_SESSION_TIMEOUT_MS = "30000" # Event Hubs' advice for consumers
    BO_TOPIC_LEDGER             = local.topics[0]
    BO_TOPIC_ORDERS             = local.topics[1]
    BO_OIDC_ISSUER              = "https://login.microsoftonline.com/${data.azurerm_client_config.current.tenant_id}/v2.0"
    BO_OIDC_AUDIENCE            = var.api_audience
    BO_LISTEN_HOST              = "0.0.0.0"
    BO_HOME                     = "/tmp/bo"
    OTEL_TRACES_EXPORTER        = "azure_monitor"
  }
}

resource "azurerm_container_app" "ingest" {
  name                         = "${local.prefix}-ingest"
  container_app_environment_id = azurerm_container_app_environment.bo.id
  resource_group_name          = azurerm_resource_group.bo.name
  revision_mode                = "Single"
  workload_profile_name        = "Consumption"
  tags                         = local.tags

  identity {
    type         = "UserAssigned"
    identity_ids = [azurerm_user_assigned_identity.service["ingest"].id]
  }

  registry {
    server   = local.registry_login_server
    identity = azurerm_user_assigned_identity.service["ingest"].id
  }

  secret {
    name                = "app-insights"
    key_vault_secret_id = azurerm_key_vault_secret.app_insights.versionless_id
    identity            = azurerm_user_assigned_identity.service["ingest"].id
  }

  # KEDA's Kafka scaler takes its SASL settings from secrets; only the password is one.
  secret {
    name                = "scaler-password"
    key_vault_secret_id = azurerm_key_vault_secret.scaler.versionless_id
    identity            = azurerm_user_assigned_identity.service["ingest"].id
  }

  secret {
    name  = "scaler-sasl"
    value = "plaintext"
  }

  secret {
    name  = "scaler-username"
    value = "$ConnectionString"
  }

  secret {
    name  = "scaler-tls"
    value = "enable"
  }

  template {
    min_replicas = 1
    max_replicas = min(var.ingest_max_replicas, var.eventhubs_partitions)

    container {
      name   = "ingest"
      image  = var.image
      cpu    = 1.0
      memory = "2Gi"
      args   = ["ingest", "--metrics-port", "9101", "--health-port", "9201"]

      dynamic "env" {
        for_each = merge(local.common_env, {
          BO_DATABASE_URL    = local.database_url["ingest"]
          BO_AZURE_CLIENT_ID = azurerm_user_assigned_identity.service["ingest"].client_id
          OTEL_SERVICE_NAME  = "bo-ingest"
        })
        content {
          name  = env.key
          value = env.value
        }
      }

      env {
        name        = "APPLICATIONINSIGHTS_CONNECTION_STRING"
        secret_name = "app-insights"
      }

      # Alive while its port answers; /healthz (503 while the database is away) only takes it
      # out of rotation: a process that waits out an outage must not be restarted for it.
      liveness_probe {
        transport = "TCP"
        port      = 9201
      }

      readiness_probe {
        transport = "HTTP"
        port      = 9201
        path      = "/healthz"
      }
    }

    custom_scale_rule {
      name             = "consumer-lag"
      custom_rule_type = "kafka"
      metadata = {
        bootstrapServers = local.common_env.BO_KAFKA_BOOTSTRAP_SERVERS
        consumerGroup    = local.common_env.BO_KAFKA_GROUP_ID
        lagThreshold     = tostring(var.ingest_lag_threshold)
      }
      authentication {
        secret_name       = "scaler-sasl"
        trigger_parameter = "sasl"
      }
      authentication {
        secret_name       = "scaler-username"
        trigger_parameter = "username"
      }
      authentication {
        secret_name       = "scaler-password"
        trigger_parameter = "password"
      }
      authentication {
        secret_name       = "scaler-tls"
        trigger_parameter = "tls"
      }
    }
  }

  lifecycle {
    ignore_changes = [template[0].container[0].image]
  }

  depends_on = [azurerm_role_assignment.pull, azurerm_role_assignment.reads_secrets]
}

resource "azurerm_container_app" "project" {
  name                         = "${local.prefix}-project"
  container_app_environment_id = azurerm_container_app_environment.bo.id
  resource_group_name          = azurerm_resource_group.bo.name
  revision_mode                = "Single"
  workload_profile_name        = "Consumption"
  tags                         = local.tags

  identity {
    type         = "UserAssigned"
    identity_ids = [azurerm_user_assigned_identity.service["project"].id]
  }

  registry {
    server   = local.registry_login_server
    identity = azurerm_user_assigned_identity.service["project"].id
  }

  secret {
    name                = "app-insights"
    key_vault_secret_id = azurerm_key_vault_secret.app_insights.versionless_id
    identity            = azurerm_user_assigned_identity.service["project"].id
  }

  template {
    # One projector: batches of a version are serialised anyway (docs/decisions.md).
    min_replicas = 1
    max_replicas = 1

    container {
      name   = "project"
      image  = var.image
      cpu    = 2.0
      memory = "4Gi"
      args   = ["project", "--metrics-port", "9102", "--health-port", "9202"]

      dynamic "env" {
        for_each = merge(local.common_env, {
          BO_DATABASE_URL    = local.database_url["project"]
          BO_AZURE_CLIENT_ID = azurerm_user_assigned_identity.service["project"].client_id
          OTEL_SERVICE_NAME  = "bo-project"
        })
        content {
          name  = env.key
          value = env.value
        }
      }

      env {
        name        = "APPLICATIONINSIGHTS_CONNECTION_STRING"
        secret_name = "app-insights"
      }

      # Alive while its port answers; /healthz (503 while the database is away) only takes it
      # out of rotation: a process that waits out an outage must not be restarted for it.
      liveness_probe {
        transport = "TCP"
        port      = 9202
      }

      readiness_probe {
        transport = "HTTP"
        port      = 9202
        path      = "/healthz"
      }
    }
  }

  lifecycle {
    ignore_changes = [template[0].container[0].image]
  }

  depends_on = [azurerm_role_assignment.pull, azurerm_role_assignment.reads_secrets]
}

resource "azurerm_container_app" "api" {
  name                         = "${local.prefix}-api"
  container_app_environment_id = azurerm_container_app_environment.bo.id
  resource_group_name          = azurerm_resource_group.bo.name
  revision_mode                = "Single"
  workload_profile_name        = "Consumption"
  tags                         = local.tags

  identity {
    type         = "UserAssigned"
    identity_ids = [azurerm_user_assigned_identity.service["api"].id]
  }

  registry {
    server   = local.registry_login_server
    identity = azurerm_user_assigned_identity.service["api"].id
  }

  secret {
    name                = "app-insights"
    key_vault_secret_id = azurerm_key_vault_secret.app_insights.versionless_id
    identity            = azurerm_user_assigned_identity.service["api"].id
  }

  secret {
    name                = "cursor-secret"
    key_vault_secret_id = azurerm_key_vault_secret.cursor.versionless_id
    identity            = azurerm_user_assigned_identity.service["api"].id
  }

  # The one public endpoint: HTTPS only (Container Apps terminates TLS 1.2+).
  ingress {
    external_enabled           = true
    target_port                = 8000
    transport                  = "http"
    allow_insecure_connections = false

    traffic_weight {
      latest_revision = true
      percentage      = 100
    }
  }

  template {
    min_replicas = 2
    max_replicas = var.api_max_replicas

    container {
      name   = "api"
      image  = var.image
      cpu    = 1.0
      memory = "2Gi"
      args   = ["serve", "--bind", "0.0.0.0:8000", "--workers", "2", "--metrics-port", "9103"]

      dynamic "env" {
        for_each = merge(local.common_env, {
          BO_DATABASE_URL    = local.database_url["api"]
          BO_AZURE_CLIENT_ID = azurerm_user_assigned_identity.service["api"].client_id
          # Container Apps' ingress proxies from the environment's own address range.
          BO_TRUSTED_PROXIES = azurerm_subnet.apps.address_prefixes[0]
          OTEL_SERVICE_NAME  = "bo-api"
          }, var.postgres_read_replica ? {
          # Look-ups on the replica; audit rows still on the primary (decisions §81).
          BO_READ_DATABASE_URL = replace(local.database_url["api"], local.postgres_host, azurerm_postgresql_flexible_server.replica[0].fqdn)
        } : {})
        content {
          name  = env.key
          value = env.value
        }
      }

      env {
        name        = "APPLICATIONINSIGHTS_CONNECTION_STRING"
        secret_name = "app-insights"
      }

      env {
        name        = "BO_CURSOR_SECRET"
        secret_name = "cursor-secret"
      }

      liveness_probe {
        transport = "HTTP"
        port      = 8000
        path      = "/healthz"
      }

      readiness_probe {
        transport = "HTTP"
        port      = 8000
        path      = "/readyz"
      }
    }

    http_scale_rule {
      name                = "concurrent-requests"
      concurrent_requests = "50"
    }
  }

  lifecycle {
    ignore_changes = [template[0].container[0].image]
  }

  depends_on = [azurerm_role_assignment.pull, azurerm_role_assignment.reads_secrets]
}

resource "azurerm_container_app_job" "migrate" {
  name                         = "${local.prefix}-migrate"
  location                     = azurerm_resource_group.bo.location
  resource_group_name          = azurerm_resource_group.bo.name
  container_app_environment_id = azurerm_container_app_environment.bo.id
  workload_profile_name        = "Consumption"
  replica_timeout_in_seconds   = 1800
  replica_retry_limit          = 0
  tags                         = local.tags

  manual_trigger_config {
    parallelism              = 1
    replica_completion_count = 1
  }

  identity {
    type         = "UserAssigned"
    identity_ids = [azurerm_user_assigned_identity.service["migrate"].id]
  }

  registry {
    server   = local.registry_login_server
    identity = azurerm_user_assigned_identity.service["migrate"].id
  }

  template {
    container {
      name   = "migrate"
      image  = var.image
      cpu    = 0.5
      memory = "1Gi"
      args   = ["migrate"]

      dynamic "env" {
        for_each = {
          BO_ENV                    = "prod"
          BO_DATABASE_AUTH          = "entra"
          BO_AZURE_CLIENT_ID        = azurerm_user_assigned_identity.service["migrate"].client_id
          BO_MIGRATION_DATABASE_URL = local.database_url["migrate"]
          BO_DATABASE_URL           = local.database_url["migrate"]
          BO_HOME                   = "/tmp/bo"
        }
        content {
          name  = env.key
          value = env.value
        }
      }
    }
  }

  lifecycle {
    ignore_changes = [template[0].container[0].image]
  }

  depends_on = [azurerm_role_assignment.pull]
}

# The operator's commands (docs/runbooks): `bo projections status`, `bo dlq …`, `bo backfill`,
# `bo log verify`, `bo rebuild …`, run inside the VNet as the operator's identity (the
# `bo_operator` group), started with the command's arguments:
#   az containerapp job start -n bo-prod-operator -g rg-bo-prod --image <the apps' image> --args "dlq" "list"
resource "azurerm_container_app_job" "operator" {
  name                         = "${local.prefix}-operator"
  location                     = azurerm_resource_group.bo.location
  resource_group_name          = azurerm_resource_group.bo.name
  container_app_environment_id = azurerm_container_app_environment.bo.id
  workload_profile_name        = "Consumption"
  replica_timeout_in_seconds   = 14400 # a rebuild of a large log takes hours
  replica_retry_limit          = 0
  tags                         = local.tags

  manual_trigger_config {
    parallelism              = 1
    replica_completion_count = 1
  }

  identity {
    type         = "UserAssigned"
    identity_ids = [azurerm_user_assigned_identity.service["operator"].id]
  }

  registry {
    server   = local.registry_login_server
    identity = azurerm_user_assigned_identity.service["operator"].id
  }

  template {
    container {
      name   = "operator"
      image  = var.image
      cpu    = 1.0
      memory = "2Gi"
      args   = ["projections", "status"]

      dynamic "env" {
        for_each = {
          BO_ENV             = "prod"
          BO_DATABASE_AUTH   = "entra"
          BO_AZURE_CLIENT_ID = azurerm_user_assigned_identity.service["operator"].client_id
          BO_DATABASE_URL    = local.database_url["operator"]
          BO_HOME            = "/tmp/bo"
        }
        content {
          name  = env.key
          value = env.value
        }
      }
    }
  }

  lifecycle {
    ignore_changes = [template[0].container[0].image]
  }

  depends_on = [azurerm_role_assignment.pull]
}
