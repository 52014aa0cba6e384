# One virtual network: the Container Apps environment, PostgreSQL (delegated subnet, private
# DNS) and private endpoints for Event Hubs, Key Vault and the registry. Nothing but the API's
# ingress is reachable from the internet.
resource "azurerm_virtual_network" "bo" {
  name                = "vnet-${local.prefix}"
  location            = azurerm_resource_group.bo.location
  resource_group_name = azurerm_resource_group.bo.name
  address_space       = [var.address_space]
  tags                = local.tags
}

resource "azurerm_subnet" "apps" {
  name                 = "snet-apps"
  resource_group_name  = azurerm_resource_group.bo.name
  virtual_network_name = azurerm_virtual_network.bo.name
  address_prefixes     = [cidrsubnet(var.address_space, 7, 0)] # a /23, as Container Apps asks
  delegation {
    name = "container-apps"
    service_delegation {
      name    = "Microsoft.App/environments"
      actions = ["Microsoft.Network/virtualNetworks/subnets/join/action"]
    }
  }
}

resource "azurerm_subnet" "postgres" {
  name                 = "snet-postgres"
  resource_group_name  = azurerm_resource_group.bo.name
  virtual_network_name = azurerm_virtual_network.bo.name
  address_prefixes     = [cidrsubnet(var.address_space, 8, 2)]
  delegation {
    name = "postgres"
    service_delegation {
      name    = "Microsoft.DBforPostgreSQL/flexibleServers"
      actions = ["Microsoft.Network/virtualNetworks/subnets/join/action"]
    }
  }
}

resource "azurerm_subnet" "endpoints" {
  name                              = "snet-endpoints"
  resource_group_name               = azurerm_resource_group.bo.name
  virtual_network_name              = azurerm_virtual_network.bo.name
  address_prefixes                  = [cidrsubnet(var.address_space, 8, 3)]
  private_endpoint_network_policies = "Enabled"
}

resource "azurerm_network_security_group" "endpoints" {
  name                = "nsg-${local.prefix}-endpoints"
  location            = azurerm_resource_group.bo.location
  resource_group_name = azurerm_resource_group.bo.name
  tags                = local.tags

  security_rule {
    name                       = "from-the-vnet-only"
    priority                   = 100
    direction                  = "Inbound"
    access                     = "Allow"
    protocol                   = "Tcp"
    source_port_range          = "*"
    destination_port_ranges    = ["443", "5671", "9093"]
    source_address_prefix      = "VirtualNetwork"
    destination_address_prefix = "VirtualNetwork"
  }

  security_rule {
    name                       = "nothing-else"
    priority                   = 4096
    direction                  = "Inbound"
    access                     = "Deny"
    protocol                   = "*"
    source_port_range          = "*"
    destination_port_range     = "*"
    source_address_prefix      = "*"
    destination_address_prefix = "*"
  }
}

# The apps' subnet: HTTPS to the API's ingress from anywhere (no plain HTTP), the platform's
# load balancer; everything else inbound only from inside the VNet.
resource "azurerm_network_security_group" "apps" {
  name                = "nsg-${local.prefix}-apps"
  location            = azurerm_resource_group.bo.location
  resource_group_name = azurerm_resource_group.bo.name
  tags                = local.tags

  security_rule {
    name                       = "api-ingress"
    priority                   = 100
    direction                  = "Inbound"
    access                     = "Allow"
    protocol                   = "Tcp"
    source_port_range          = "*"
    destination_port_range     = "443"
    source_address_prefix      = "Internet"
    destination_address_prefix = "*"
  }

  security_rule {
    name                       = "platform-load-balancer"
    priority                   = 110
    direction                  = "Inbound"
    access                     = "Allow"
    protocol                   = "*"
    source_port_range          = "*"
    destination_port_range     = "*"
    source_address_prefix      = "AzureLoadBalancer"
    destination_address_prefix = "*"
  }
}

resource "azurerm_subnet_network_security_group_association" "apps" {
  subnet_id                 = azurerm_subnet.apps.id
  network_security_group_id = azurerm_network_security_group.apps.id
}

# PostgreSQL's subnet: 5432 from the apps only (and the server's own standby), nothing else.
resource "azurerm_network_security_group" "postgres" {
  name                = "nsg-${local.prefix}-postgres"
  location            = azurerm_resource_group.bo.location
  resource_group_name = azurerm_resource_group.bo.name
  tags                = local.tags

  security_rule {
    name                       = "postgres-from-the-apps"
    priority                   = 100
    direction                  = "Inbound"
    access                     = "Allow"
    protocol                   = "Tcp"
    source_port_range          = "*"
    destination_port_range     = "5432"
    source_address_prefix      = azurerm_subnet.apps.address_prefixes[0]
    destination_address_prefix = "*"
  }

  security_rule {
    name                       = "within-the-subnet"
    priority                   = 110
    direction                  = "Inbound"
    access                     = "Allow"
    protocol                   = "*"
    source_port_range          = "*"
    destination_port_range     = "*"
    source_address_prefix      = azurerm_subnet.postgres.address_prefixes[0]
    destination_address_prefix = "*"
  }

  security_rule {
    name                       = "platform-load-balancer"
    priority                   = 120
    direction                  = "Inbound"
    access                     = "Allow"
    protocol                   = "*"
    source_port_range          = "*"
    destination_port_range     = "*"
    source_address_prefix      = "AzureLoadBalancer"
    destination_address_prefix = "*"
  }

  security_rule {
    name                       = "nothing-else"
    priority                   = 4096
    direction                  = "Inbound"
    access                     = "Deny"
    protocol                   = "*"
    source_port_range          = "*"
    destination_port_range     = "*"
    source_address_prefix      = "*"
    destination_address_prefix = "*"
  }
}

resource "azurerm_subnet_network_security_group_association" "postgres" {
  subnet_id                 = azurerm_subnet.postgres.id
  network_security_group_id = azurerm_network_security_group.postgres.id
}

resource "azurerm_subnet_network_security_group_association" "endpoints" {
  subnet_id                 = azurerm_subnet.endpoints.id
  network_security_group_id = azurerm_network_security_group.endpoints.id
}

# Private DNS: each service's private endpoint answers under its usual name inside the VNet.
locals {
  private_zones = {
    postgres  = "${local.prefix}.private.postgres.database.azure.com"
    eventhubs = "privatelink.servicebus.windows.net"
    vault     = "privatelink.vaultcore.azure.net"
    registry  = "privatelink.azurecr.io"
  }
}

resource "azurerm_private_dns_zone" "zones" {
  for_each            = local.private_zones
  name                = each.value
  resource_group_name = azurerm_resource_group.bo.name
  tags                = local.tags
}

resource "azurerm_private_dns_zone_virtual_network_link" "zones" {
  for_each              = local.private_zones
  name                  = "link-${each.key}"
  resource_group_name   = azurerm_resource_group.bo.name
  private_dns_zone_name = azurerm_private_dns_zone.zones[each.key].name
  virtual_network_id    = azurerm_virtual_network.bo.id
  registration_enabled  = false
  tags                  = local.tags
}
