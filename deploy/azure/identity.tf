# A user-assigned managed identity per service: the only credentials bo's processes have.
# Each pulls the image (AcrPull), reads its own Key Vault secrets, and logs in to PostgreSQL as
# a principal of the same name (README.md: one-time `pgaadauth_create_principal` per service).
resource "azurerm_user_assigned_identity" "service" {
  for_each            = local.services
  name                = "id-${local.prefix}-${each.key}"
  location            = azurerm_resource_group.bo.location
  resource_group_name = azurerm_resource_group.bo.name
  tags                = local.tags
}

resource "azurerm_role_assignment" "pull" {
  for_each             = local.services
  scope                = local.registry_id
  role_definition_name = "AcrPull"
  principal_id         = azurerm_user_assigned_identity.service[each.key].principal_id
}

# Ingest reads the two topics; nothing else reads or writes Event Hubs.
resource "azurerm_role_assignment" "ingest_receives" {
  for_each             = toset(local.topics)
  scope                = azurerm_eventhub.topic[each.key].id
  role_definition_name = "Azure Event Hubs Data Receiver"
  principal_id         = azurerm_user_assigned_identity.service["ingest"].principal_id
}

# Secrets are read by the identities whose apps reference them (keyvault.tf, containerapps.tf).
resource "azurerm_role_assignment" "reads_secrets" {
  for_each             = local.secret_readers
  scope                = "${azurerm_key_vault.bo.id}/secrets/${each.value.secret}"
  role_definition_name = "Key Vault Secrets User"
  principal_id         = azurerm_user_assigned_identity.service[each.value.service].principal_id
  depends_on           = [azurerm_key_vault_secret.cursor, azurerm_key_vault_secret.app_insights, azurerm_key_vault_secret.scaler]
}
