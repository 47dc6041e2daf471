variable "project_id" {
  description = "GCP project of the environment."
  type        = string
}

variable "name" {
  description = "Prefix of the key ring name."
  type        = string
}

variable "region" {
  description = "Location of the key ring: the region of the stores it encrypts."
  type        = string
}

variable "rotation_period" {
  description = "Automatic rotation period of every key."
  type        = string
  default     = "7776000s" # 90 days
}

variable "protection_level" {
  description = "SOFTWARE or HSM."
  type        = string
  default     = "SOFTWARE"
}

variable "labels" {
  description = "Labels of the keys."
  type        = map(string)
  default     = {}
}
