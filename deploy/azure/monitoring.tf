# Logs of every app (Log Analytics, through the Container Apps environment) and traces in
# Application Insights (OTEL_TRACES_EXPORTER=azure_monitor, telemetry/tracing.py).
resource "azurerm_log_analytics_workspace" "bo" {
  name                = "log-${local.prefix}"
  location            = azurerm_resource_group.bo.location
  resource_group_name = azurerm_resource_group.bo.name
  sku                 = "PerGB2018"
  retention_in_days   = var.log_retention_days
  tags                = local.tags
}

resource "azurerm_application_insights" "bo" {
  name                = "appi-${local.prefix}"
  location            = azurerm_resource_group.bo.location
  resource_group_name = azurerm_resource_group.bo.name
  workspace_id        = azurerm_log_analytics_workspace.bo.id
  application_type    = "other"
  retention_in_days   = var.log_retention_days
  tags                = local.tags
}
