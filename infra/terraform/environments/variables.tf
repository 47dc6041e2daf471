variable "project_id" {
  description = "GCP project of the environment."
  type        = string
}

variable "environment" {
  description = "staging or production."
  type        = string
  validation {
    condition     = contains(["staging", "production"], var.environment)
    error_message = "environment is staging or production."
  }
}

variable "region" {
  description = "Region of every resource."
  type        = string
  default     = "southamerica-east1"
}

variable "bucket_prefix" {
  description = "Prefix of the (globally unique) bucket names."
  type        = string
  default     = "latam-data"
}

variable "nodes_cidr" {
  description = "Node subnet."
  type        = string
}

variable "pods_cidr" {
  description = "Pod range."
  type        = string
}

variable "services_cidr" {
  description = "Service range."
  type        = string
}

variable "master_cidr" {
  description = "/28 of the GKE control plane."
  type        = string
}

variable "master_authorized_networks" {
  description = "Networks allowed to reach the GKE control plane (the deploy runners', the operators' VPN)."
  type = list(object({
    cidr_block   = string
    display_name = string
  }))
}

variable "gke_rbac_security_group" {
  description = "Google Group for GKE RBAC (gke-security-groups@<the organisation's domain>)."
  type        = string
}

variable "gke_machine_type" {
  description = "Machine type of the platform's nodes."
  type        = string
}

variable "gke_min_nodes" {
  description = "Fewest nodes per zone."
  type        = number
}

variable "gke_max_nodes" {
  description = "Most nodes per zone."
  type        = number
}

variable "sql_tier" {
  description = "Cloud SQL tier of the primary."
  type        = string
}

variable "sql_replica_tier" {
  description = "Cloud SQL tier of the read replica."
  type        = string
}

variable "sql_availability_type" {
  description = "REGIONAL (HA standby) or ZONAL."
  type        = string
}

variable "sql_disk_size_gb" {
  description = "Initial disk size of the primary."
  type        = number
}

variable "sql_retained_backups" {
  description = "Daily backups kept."
  type        = number
}

variable "enable_redis" {
  description = "Create Memorystore for the API's rate-limit counters (otherwise Redis runs in the cluster)."
  type        = bool
  default     = false
}

variable "redis_tier" {
  description = "Memorystore tier."
  type        = string
  default     = "STANDARD_HA"
}

variable "redis_memory_size_gb" {
  description = "Memorystore size."
  type        = number
  default     = 1
}
