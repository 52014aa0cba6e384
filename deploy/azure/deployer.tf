# The CD pipeline's identity: GitHub Actions logs in as it with OpenID Connect (a federated
# credential for this repository's environment, no secret), pushes the image, starts the
# migrate job and moves the apps to a new image. Nothing more: a custom role on this
# resource group, and AcrPush on the registry.
resource "azurerm_user_assigned_identity" "deployer" {
  name                = "id-${local.prefix}-deployer"
  location            = azurerm_resource_group.bo.location
  resource_group_name = azurerm_resource_group.bo.name
  tags                = local.tags
}

resource "azurerm_federated_identity_credential" "deployer" {
  name                = "github-${var.environment}"
  resource_group_name = azurerm_resource_group.bo.name
  parent_id           = azurerm_user_assigned_identity.deployer.id
  audience            = ["api://AzureADTokenExchange"]
  issuer              = "https://token.actions.githubusercontent.com"
  subject             = "repo:${var.github_repository}:environment:${var.environment}"
}

resource "azurerm_role_definition" "deployer" {
  name        = "bo-${var.environment}-deployer"
  scope       = azurerm_resource_group.bo.id
  description = "Deploy bo: update its container apps and jobs to a new image, start the migrate and operator jobs."

  permissions {
    actions = [
      "Microsoft.App/containerApps/read",
      "Microsoft.App/containerApps/write",
      "Microsoft.App/containerApps/revisions/read",
      "Microsoft.App/jobs/read",
      "Microsoft.App/jobs/write",
      "Microsoft.App/jobs/start/action",
      "Microsoft.App/jobs/executions/read",
      "Microsoft.App/managedEnvironments/read",
      "Microsoft.App/managedEnvironments/join/action",
      "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action",
    ]
  }

  assignable_scopes = [azurerm_resource_group.bo.id]
}

resource "azurerm_role_assignment" "deployer_deploys" {
  scope              = azurerm_resource_group.bo.id
  role_definition_id = azurerm_role_definition.deployer.role_definition_resource_id
  principal_id       = azurerm_user_assigned_identity.deployer.principal_id
}

resource "azurerm_role_assignment" "deployer_pushes" {
  scope                = local.registry_id
  role_definition_name = "AcrPush"
  principal_id         = azurerm_user_assigned_identity.deployer.principal_id
}
