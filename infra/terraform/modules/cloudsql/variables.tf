variable "project_id" {
  description = "GCP project of the environment."
  type        = string
}

variable "name" {
  description = "Prefix of the instance names."
  type        = string
}

variable "region" {
  description = "Region of the primary and its replica."
  type        = string
}

variable "network_id" {
  description = "VPC whose private services access gives the instances their private IPs."
  type        = string
}

variable "kms_key_id" {
  description = "Cloud KMS key (CMEK) of the instances' disks and backups."
  type        = string
}

variable "database_version" {
  description = "PostgreSQL major version."
  type        = string
  default     = "POSTGRES_17"
}

variable "tier" {
  description = "Machine tier of the primary."
  type        = string
}

variable "replica_tier" {
  description = "Machine tier of the read replica."
  type        = string
}

variable "availability_type" {
  description = "REGIONAL (a standby in another zone, automatic failover) or ZONAL."
  type        = string
  validation {
    condition     = contains(["REGIONAL", "ZONAL"], var.availability_type)
    error_message = "availability_type is REGIONAL or ZONAL."
  }
}

variable "disk_size_gb" {
  description = "Initial disk size; it grows by itself."
  type        = number
  default     = 100
}

variable "retained_backups" {
  description = "Daily backups kept."
  type        = number
  default     = 30
}

variable "read_replica" {
  description = "Create the read replica."
  type        = bool
  default     = true
}

variable "databases" {
  description = "Databases of the primary: the warehouse and Dagster's instance storage."
  type        = list(string)
  default     = ["latam", "latam_dagster"]
}

variable "labels" {
  description = "Labels of the instances."
  type        = map(string)
  default     = {}
}
