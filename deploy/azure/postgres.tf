# PostgreSQL Flexible Server inside the VNet: no public address, Entra ID authentication only
# (no password exists), TLS 1.2 or newer required, backups and high availability as variables.
resource "azurerm_postgresql_flexible_server" "bo" {
  #checkov:skip=CKV2_AZURE_57:VNet-integrated (delegated subnet, private DNS, no public access): a private endpoint is the other private model, not an addition
  name                          = coalesce(var.postgres_server_name, "psql-${local.prefix}")
  location                      = azurerm_resource_group.bo.location
  resource_group_name           = azurerm_resource_group.bo.name
  version                       = var.postgres_version
  sku_name                      = var.postgres_sku
  storage_mb                    = var.postgres_storage_mb
  auto_grow_enabled             = true
  zone                          = "1"
  delegated_subnet_id           = azurerm_subnet.postgres.id
  private_dns_zone_id           = azurerm_private_dns_zone.zones["postgres"].id
  public_network_access_enabled = false
  backup_retention_days         = var.postgres_backup_retention_days
  geo_redundant_backup_enabled  = var.postgres_geo_redundant_backup
  tags                          = local.tags

  authentication {
    active_directory_auth_enabled = true
    password_auth_enabled         = false
    tenant_id                     = data.azurerm_client_config.current.tenant_id
  }

  dynamic "high_availability" {
    for_each = var.postgres_high_availability ? [1] : []
    content {
      mode                      = "ZoneRedundant"
      standby_availability_zone = "2"
    }
  }

  maintenance_window {
    day_of_week  = 0
    start_hour   = 3
    start_minute = 0
  }

  # A high-availability failover swaps the zones: Terraform must not swap them back.
  lifecycle {
    ignore_changes = [zone, high_availability[0].standby_availability_zone]
  }

  depends_on = [azurerm_private_dns_zone_virtual_network_link.zones]
}

# The API's read replica (docs/runbooks/scaling.md), in the same VNet and zone-independent.
resource "azurerm_postgresql_flexible_server" "replica" {
  #checkov:skip=CKV2_AZURE_57:VNet-integrated like its primary (delegated subnet, private DNS, no public access)
  #checkov:skip=CKV_AZURE_136:a replica takes no backups of its own; its primary's are geo-redundant
  count                         = var.postgres_read_replica ? 1 : 0
  name                          = "${azurerm_postgresql_flexible_server.bo.name}-replica"
  location                      = azurerm_resource_group.bo.location
  resource_group_name           = azurerm_resource_group.bo.name
  create_mode                   = "Replica"
  source_server_id              = azurerm_postgresql_flexible_server.bo.id
  version                       = var.postgres_version
  sku_name                      = var.postgres_sku
  storage_mb                    = var.postgres_storage_mb
  zone                          = "2"
  delegated_subnet_id           = azurerm_subnet.postgres.id
  private_dns_zone_id           = azurerm_private_dns_zone.zones["postgres"].id
  public_network_access_enabled = false
  tags                          = local.tags

  authentication {
    active_directory_auth_enabled = true
    password_auth_enabled         = false
    tenant_id                     = data.azurerm_client_config.current.tenant_id
  }

  lifecycle {
    ignore_changes = [zone]
  }
}

resource "azurerm_postgresql_flexible_server_database" "bo" {
  name      = "bo"
  server_id = azurerm_postgresql_flexible_server.bo.id
  charset   = "UTF8"
  collation = "en_US.utf8"
}

# TLS: required on every connection, 1.2 or newer.
resource "azurerm_postgresql_flexible_server_configuration" "require_tls" {
  name      = "require_secure_transport"
  server_id = azurerm_postgresql_flexible_server.bo.id
  value     = "on"
}

resource "azurerm_postgresql_flexible_server_configuration" "tls_version" {
  name      = "ssl_min_protocol_version"
  server_id = azurerm_postgresql_flexible_server.bo.id
  value     = "TLSv1.2"
}

# What an auditor asks of a payments database: connections and checkpoints in the server log.
resource "azurerm_postgresql_flexible_server_configuration" "log_connections" {
  name      = "log_connections"
  server_id = azurerm_postgresql_flexible_server.bo.id
  value     = "on"
}

resource "azurerm_postgresql_flexible_server_configuration" "log_checkpoints" {
  name      = "log_checkpoints"
  server_id = azurerm_postgresql_flexible_server.bo.id
  value     = "on"
}

# Administrators: the operators' group, and the migrate job's identity (it owns the schema).
resource "azurerm_postgresql_flexible_server_active_directory_administrator" "operators" {
  server_name         = azurerm_postgresql_flexible_server.bo.name
  resource_group_name = azurerm_resource_group.bo.name
  tenant_id           = data.azurerm_client_config.current.tenant_id
  object_id           = var.postgres_entra_admin.object_id
  principal_name      = var.postgres_entra_admin.principal_name
  principal_type      = var.postgres_entra_admin.principal_type
}

resource "azurerm_postgresql_flexible_server_active_directory_administrator" "migrate" {
  server_name         = azurerm_postgresql_flexible_server.bo.name
  resource_group_name = azurerm_resource_group.bo.name
  tenant_id           = data.azurerm_client_config.current.tenant_id
  object_id           = azurerm_user_assigned_identity.service["migrate"].principal_id
  principal_name      = azurerm_user_assigned_identity.service["migrate"].name
  principal_type      = "ServicePrincipal"
}
