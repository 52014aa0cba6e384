# Key Vault holds what the apps must not carry in their configuration: the API's cursor key,
# the App Insights connection string and the scaler's Listen-only connection string. The apps
# reference them by URI through their managed identities (containerapps.tf); no secret is a
# variable or an output. The cursor key is generated here without ever entering the state:
# an ephemeral value written through a write-only attribute (Terraform 1.11).
resource "azurerm_key_vault" "bo" {
  #checkov:skip=CKV_AZURE_189:closed unless operator_ip_ranges is given, for the apply that writes the secrets from outside the VNet; the apps read through the private endpoint
  name                          = "kv-${local.prefix}"
  location                      = azurerm_resource_group.bo.location
  resource_group_name           = azurerm_resource_group.bo.name
  tenant_id                     = data.azurerm_client_config.current.tenant_id
  sku_name                      = "premium"
  enable_rbac_authorization     = true
  purge_protection_enabled      = true
  soft_delete_retention_days    = 90
  public_network_access_enabled = length(var.operator_ip_ranges) > 0 # Terraform writes the secrets from there
  tags                          = local.tags

  network_acls {
    default_action = "Deny"
    bypass         = "AzureServices"
    ip_rules       = var.operator_ip_ranges
  }
}

resource "azurerm_private_endpoint" "vault" {
  name                = "pe-${local.prefix}-vault"
  location            = azurerm_resource_group.bo.location
  resource_group_name = azurerm_resource_group.bo.name
  subnet_id           = azurerm_subnet.endpoints.id
  tags                = local.tags

  private_service_connection {
    name                           = "vault"
    private_connection_resource_id = azurerm_key_vault.bo.id
    subresource_names              = ["vault"]
    is_manual_connection           = false
  }

  private_dns_zone_group {
    name                 = "vault"
    private_dns_zone_ids = [azurerm_private_dns_zone.zones["vault"].id]
  }
}

# Whoever applies this writes the secrets (and nothing else reads them but the apps).
resource "azurerm_role_assignment" "deployer_writes_secrets" {
  scope                = azurerm_key_vault.bo.id
  role_definition_name = "Key Vault Secrets Officer"
  principal_id         = data.azurerm_client_config.current.object_id
}

ephemeral "random_password" "cursor" {
  length  = 48
  special = false
}

# Secrets have no expiry date: bo reads them at start and an expired one would stop the apps
# silently; they are rotated by docs/runbooks/key-rotation.md (bump the version below).
resource "azurerm_key_vault_secret" "cursor" {
  #checkov:skip=CKV_AZURE_41:rotated by docs/runbooks/key-rotation.md, not by expiry, which would stop the API
  name             = "bo-cursor-secret"
  key_vault_id     = azurerm_key_vault.bo.id
  value_wo         = ephemeral.random_password.cursor.result
  value_wo_version = 1 # bump to rotate (docs/runbooks/key-rotation.md)
  content_type     = "text/plain"
  depends_on       = [azurerm_role_assignment.deployer_writes_secrets]
}

resource "azurerm_key_vault_secret" "app_insights" {
  #checkov:skip=CKV_AZURE_41:follows Application Insights' connection string, which does not expire
  name         = "bo-app-insights-connection-string"
  key_vault_id = azurerm_key_vault.bo.id
  value        = azurerm_application_insights.bo.connection_string
  content_type = "text/plain"
  depends_on   = [azurerm_role_assignment.deployer_writes_secrets]
}

resource "azurerm_key_vault_secret" "scaler" {
  #checkov:skip=CKV_AZURE_41:follows the Listen-only rule's key, rotated with docs/runbooks/key-rotation.md
  name         = "bo-scaler-eventhubs-connection-string"
  key_vault_id = azurerm_key_vault.bo.id
  value        = azurerm_eventhub_namespace_authorization_rule.scaler.primary_connection_string
  content_type = "text/plain"
  depends_on   = [azurerm_role_assignment.deployer_writes_secrets]
}

locals {
  # Which service reads which secret (identity.tf grants exactly these).
  secret_readers = {
    "api-cursor"           = { service = "api", secret = "bo-cursor-secret" }
    "api-app-insights"     = { service = "api", secret = "bo-app-insights-connection-string" }
    "ingest-app-insights"  = { service = "ingest", secret = "bo-app-insights-connection-string" }
    "ingest-scaler"        = { service = "ingest", secret = "bo-scaler-eventhubs-connection-string" }
    "project-app-insights" = { service = "project", secret = "bo-app-insights-connection-string" }
  }
}
