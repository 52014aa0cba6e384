# bo on Azure (issue 13): PostgreSQL Flexible Server, Event Hubs (Kafka endpoint), Container
# Apps, ACR, Key Vault, Log Analytics and Application Insights. README.md says how to apply it.
terraform {
  # 1.11: write-only attributes (`value_wo`), so that no generated secret is kept in the state.
  required_version = ">= 1.11"

  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = "~> 4.30"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.7"
    }
  }

  # The state lives in the operator's storage account (README.md): `terraform init -backend-config=…`.
  backend "azurerm" {}
}

provider "azurerm" {
  features {
    key_vault {
      purge_soft_delete_on_destroy = false
    }
  }
  # Entra ID for the storage data plane (the state, no account keys).
  storage_use_azuread = true
}

data "azurerm_client_config" "current" {}
