# What the pipeline and the operators need; no secret is an output.
output "resource_group" {
  value = azurerm_resource_group.bo.name
}

output "api_url" {
  description = "The API's public address (the only public endpoint)."
  value       = "https://${azurerm_container_app.api.ingress[0].fqdn}"
}

output "registry" {
  description = "The registry the CD pipeline pushes to (ACR_NAME: the part before .azurecr.io)."
  value       = local.registry_login_server
}

output "postgres_host" {
  description = "The server's private name (resolvable inside the VNet only)."
  value       = azurerm_postgresql_flexible_server.bo.fqdn
}

output "kafka_bootstrap_servers" {
  value = local.common_env.BO_KAFKA_BOOTSTRAP_SERVERS
}

output "key_vault_uri" {
  value = azurerm_key_vault.bo.vault_uri
}

output "deployer_client_id" {
  description = "AZURE_CLIENT_ID of the CD workflow's environment."
  value       = azurerm_user_assigned_identity.deployer.client_id
}

output "read_replica_host" {
  value = var.postgres_read_replica ? azurerm_postgresql_flexible_server.replica[0].fqdn : null
}

output "service_identities" {
  description = "Each service's managed identity: the PostgreSQL principal to create for it (README.md) and its client id."
  value = { for name, identity in azurerm_user_assigned_identity.service :
    name => { principal_name = identity.name, client_id = identity.client_id, postgres_group = local.services[name].group }
  }
}
