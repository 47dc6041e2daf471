variable "project_id" {
  description = "GCP project of the environment."
  type        = string
}

variable "name" {
  description = "Prefix of the secret ids."
  type        = string
}

variable "region" {
  description = "The one region the secrets are replicated in."
  type        = string
}

variable "kms_key_id" {
  description = "Cloud KMS key (CMEK) of the secrets, in var.region."
  type        = string
}

variable "secret_ids" {
  description = "The secrets (names only; values are added outside Terraform)."
  type        = list(string)
}

variable "accessor" {
  description = "IAM member that reads the secrets (the platform's workload identity)."
  type        = string
}

variable "labels" {
  description = "Labels of the secrets."
  type        = map(string)
  default     = {}
}
