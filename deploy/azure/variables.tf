variable "environment" {
  description = "dev or prod: names every resource (bo-<environment>-…)."
  type        = string
  validation {
    condition     = contains(["dev", "prod"], var.environment)
    error_message = "environment is dev or prod."
  }
}

variable "location" {
  description = "Azure region."
  type        = string
  default     = "westeurope"
}

variable "image" {
  description = "The first image the apps run (registry/bo@sha256:…); later images are deployed by the CD pipeline."
  type        = string
}

variable "address_space" {
  description = "The virtual network's address space (/16)."
  type        = string
  default     = "10.40.0.0/16"
}

# --- PostgreSQL -------------------------------------------------------------------------------

variable "postgres_version" {
  description = "PostgreSQL major version (bo supports 15 to 18)."
  type        = string
  default     = "16"
}

variable "postgres_sku" {
  description = "Flexible Server SKU."
  type        = string
  default     = "GP_Standard_D2ds_v5"
}

variable "postgres_storage_mb" {
  description = "Storage in MB."
  type        = number
  default     = 131072
}

variable "postgres_high_availability" {
  description = "Zone-redundant high availability (a standby in another zone)."
  type        = bool
  default     = true
}

variable "postgres_backup_retention_days" {
  description = "Point-in-time restore window, in days (7 to 35)."
  type        = number
  default     = 35
  validation {
    condition     = var.postgres_backup_retention_days >= 7 && var.postgres_backup_retention_days <= 35
    error_message = "Backups are kept 7 to 35 days."
  }
}

variable "postgres_geo_redundant_backup" {
  description = "Keep backups in the paired region too."
  type        = bool
  default     = true
}

variable "postgres_entra_admin" {
  description = "The Entra ID group or principal that administers the server (besides the migrate identity)."
  type = object({
    object_id      = string
    principal_name = string
    principal_type = string # Group, User or ServicePrincipal
  })
}

# --- Event Hubs -------------------------------------------------------------------------------

variable "eventhubs_capacity" {
  description = "Throughput units of the Event Hubs namespace."
  type        = number
  default     = 2
}

variable "eventhubs_partitions" {
  description = "Partitions of each topic: the most ingest replicas that can share the work."
  type        = number
  default     = 4
}

variable "eventhubs_retention_days" {
  description = "Days Event Hubs keeps messages (bo keeps them for good in its log)."
  type        = number
  default     = 7
}

# --- The apps ---------------------------------------------------------------------------------

variable "api_audience" {
  description = "The client id of the API's Entra ID app registration: the `aud` of the v2 access tokens it accepts (set accessTokenAcceptedVersion 2 in its manifest)."
  type        = string
}

variable "github_repository" {
  description = "owner/name of the repository whose CD workflow deploys here (the deployer identity trusts its `environment` tokens)."
  type        = string
}

variable "shared_registry" {
  description = "The registry of another environment to pull from (prod: dev's), so that prod runs the very image dev ran; null: this environment makes its own."
  type = object({
    id           = string
    login_server = string
  })
  default = null
}

variable "postgres_read_replica" {
  description = "A read replica of the database for the API's look-ups (BO_READ_DATABASE_URL; audit rows still go to the primary)."
  type        = bool
  default     = false
}

variable "postgres_server_name" {
  description = "The server's name, when it is not psql-bo-<environment> (a server restored from a backup: docs/runbooks/restore-from-backup.md)."
  type        = string
  default     = ""
}

variable "api_max_replicas" {
  description = "Most API replicas."
  type        = number
  default     = 4
}

variable "ingest_max_replicas" {
  description = "Most ingest replicas (never more than the partitions of a topic)."
  type        = number
  default     = 4
}

variable "ingest_lag_threshold" {
  description = "Consumer lag per replica above which KEDA adds an ingest replica."
  type        = number
  default     = 20000
}

variable "zone_redundant" {
  description = "Spread the Container Apps environment and the registry over availability zones."
  type        = bool
  default     = true
}

# --- Network access for operators -------------------------------------------------------------

variable "operator_ip_ranges" {
  description = "CIDR ranges (the operators', the deployment runner's) allowed through the Key Vault and registry firewalls; empty: the VNet only."
  type        = list(string)
  default     = []
}

variable "registry_public_network_access" {
  description = "Whether the registry answers outside the VNet at all (only within operator_ip_ranges). Off: the image is pushed from a runner inside the VNet."
  type        = bool
  default     = false
}

variable "log_retention_days" {
  description = "Days Log Analytics keeps logs and traces."
  type        = number
  default     = 90
}
