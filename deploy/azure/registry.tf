# The registry the pipeline pushes bo's image to, once per commit; the apps pull it by digest
# with their managed identities (no admin user, no password). One registry serves dev and prod
# (prod sets `shared_registry` to dev's): the digest prod deploys is the image dev ran.
resource "azurerm_container_registry" "bo" {
  count = var.shared_registry == null ? 1 : 0

  #checkov:skip=CKV_AZURE_165:bo runs in one region; the registry is zone-redundant within it
  #checkov:skip=CKV_AZURE_166:images are scanned by Trivy in the CD pipeline before they are pushed, and deployed by digest
  name                          = "cr${local.compact}"
  location                      = azurerm_resource_group.bo.location
  resource_group_name           = azurerm_resource_group.bo.name
  sku                           = "Premium"
  admin_enabled                 = false
  public_network_access_enabled = var.registry_public_network_access
  network_rule_bypass_option    = "AzureServices"
  zone_redundancy_enabled       = var.zone_redundant
  data_endpoint_enabled         = true
  quarantine_policy_enabled     = false # no scanner releases images from quarantine here: CD scans before pushing (Trivy)
  retention_policy_in_days      = 30
  trust_policy_enabled          = true
  export_policy_enabled         = var.registry_public_network_access # azurerm: export may be off only when public access is
  tags                          = local.tags

  network_rule_set {
    default_action = "Deny"
    ip_rule = [for range in var.operator_ip_ranges : {
      action   = "Allow"
      ip_range = range
    }]
  }
}

resource "azurerm_private_endpoint" "registry" {
  name                = "pe-${local.prefix}-registry"
  location            = azurerm_resource_group.bo.location
  resource_group_name = azurerm_resource_group.bo.name
  subnet_id           = azurerm_subnet.endpoints.id
  tags                = local.tags

  private_service_connection {
    name                           = "registry"
    private_connection_resource_id = local.registry_id
    subresource_names              = ["registry"]
    is_manual_connection           = false
  }

  private_dns_zone_group {
    name                 = "registry"
    private_dns_zone_ids = [azurerm_private_dns_zone.zones["registry"].id]
  }
}

locals {
  registry_id           = var.shared_registry == null ? azurerm_container_registry.bo[0].id : var.shared_registry.id
  registry_login_server = var.shared_registry == null ? azurerm_container_registry.bo[0].login_server : var.shared_registry.login_server
}
