# Event Hubs with its Kafka endpoint (Standard tier and up): the two topics bo reads.
# Reached through a private endpoint; TLS 1.2 or newer. bo's own clients authenticate with
# their managed identity (OAUTHBEARER, bo/entra.py); the one shared-access rule is Listen-only
# and exists for KEDA's Kafka scaler, which reads the consumer group's lag (containerapps.tf).
resource "azurerm_eventhub_namespace" "bo" {
  name                          = "evhns-${local.prefix}"
  location                      = azurerm_resource_group.bo.location
  resource_group_name           = azurerm_resource_group.bo.name
  sku                           = "Standard"
  capacity                      = var.eventhubs_capacity
  minimum_tls_version           = "1.2"
  public_network_access_enabled = false
  # Shared-access keys stay possible for KEDA's scaler, which has no identity: its Listen-only
  # rule below. The namespace's own RootManageSharedAccessKey exists with them: never handed
  # out, and regenerated with the scaler's (docs/runbooks/key-rotation.md). bo uses Entra ID.
  local_authentication_enabled = true
  tags                         = local.tags

  network_rulesets {
    default_action                 = "Deny"
    public_network_access_enabled  = false
    trusted_service_access_enabled = true
  }
}

resource "azurerm_eventhub" "topic" {
  for_each          = toset(local.topics)
  name              = each.key
  namespace_id      = azurerm_eventhub_namespace.bo.id
  partition_count   = var.eventhubs_partitions
  message_retention = var.eventhubs_retention_days
}

resource "azurerm_eventhub_namespace_authorization_rule" "scaler" {
  name                = "keda-scaler-listen"
  namespace_name      = azurerm_eventhub_namespace.bo.name
  resource_group_name = azurerm_resource_group.bo.name
  listen              = true
  send                = false
  manage              = false
}

resource "azurerm_private_endpoint" "eventhubs" {
  name                = "pe-${local.prefix}-eventhubs"
  location            = azurerm_resource_group.bo.location
  resource_group_name = azurerm_resource_group.bo.name
  subnet_id           = azurerm_subnet.endpoints.id
  tags                = local.tags

  private_service_connection {
    name                           = "eventhubs"
    private_connection_resource_id = azurerm_eventhub_namespace.bo.id
    subresource_names              = ["namespace"]
    is_manual_connection           = false
  }

  private_dns_zone_group {
    name                 = "eventhubs"
    private_dns_zone_ids = [azurerm_private_dns_zone.zones["eventhubs"].id]
  }
}
