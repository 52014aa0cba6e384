locals {
  prefix = "bo-${var.environment}"
  # Names without dashes, for the resources that allow none (registry) or are global (vault).
  compact = replace(local.prefix, "-", "")
  tags = {
    application = "bo"
    environment = var.environment
    managed_by  = "terraform"
  }
  topics = ["bo.ledger-entries.v1", "bo.payment-orders.v1"]
  # The services, each with its own managed identity and its own PostgreSQL group role (migration 0006).
  services = {
    ingest   = { group = "bo_ingest" }
    project  = { group = "bo_projector" }
    api      = { group = "bo_api" }
    migrate  = { group = "bo" }
    operator = { group = "bo_operator" } # the operator's commands, run as a job (docs/runbooks/deployment.md)
  }
}

resource "azurerm_resource_group" "bo" {
  name     = "rg-${local.prefix}"
  location = var.location
  tags     = local.tags
}
