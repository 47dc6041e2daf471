variable "project_id" {
  description = "GCP project of the environment."
  type        = string
}

variable "name" {
  description = "Prefix of the bucket names (bucket names are global)."
  type        = string
}

variable "region" {
  description = "Location of the buckets."
  type        = string
}

variable "kms_key_id" {
  description = "Cloud KMS key (CMEK) of the buckets' objects."
  type        = string
}

variable "buckets" {
  description = "Buckets by suffix, with the days a current object is kept."
  type = map(object({
    retention_days = number
  }))
  default = {
    backups         = { retention_days = 35 }
    dagster-compute = { retention_days = 30 }
  }
}

variable "writer" {
  description = "IAM member that writes the buckets (the platform's workload identity)."
  type        = string
}

variable "labels" {
  description = "Labels of the buckets."
  type        = map(string)
  default     = {}
}
