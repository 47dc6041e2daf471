variable "project_id" {
  description = "GCP project of the environment."
  type        = string
}

variable "name" {
  description = "Prefix of the instance name."
  type        = string
}

variable "region" {
  description = "Region of the instance."
  type        = string
}

variable "network_id" {
  description = "VPC with private services access."
  type        = string
}

variable "kms_key_id" {
  description = "Cloud KMS key (CMEK) of the instance."
  type        = string
}

variable "tier" {
  description = "BASIC or STANDARD_HA."
  type        = string
  default     = "STANDARD_HA"
}

variable "memory_size_gb" {
  description = "Memory of the instance."
  type        = number
  default     = 1
}

variable "labels" {
  description = "Labels of the instance."
  type        = map(string)
  default     = {}
}
