variable "project_id" {
  description = "GCP project of the environment."
  type        = string
}

variable "name" {
  description = "Prefix of the resource names (latam-<environment>)."
  type        = string
}

variable "region" {
  description = "Region of the subnet, the router and Cloud NAT."
  type        = string
}

variable "nodes_cidr" {
  description = "Primary range of the node subnet."
  type        = string
}

variable "pods_cidr" {
  description = "Secondary range for the pods (VPC-native cluster)."
  type        = string
}

variable "services_cidr" {
  description = "Secondary range for the Kubernetes services."
  type        = string
}

variable "private_services_prefix_length" {
  description = "Size of the range reserved for private services access (Cloud SQL, Memorystore)."
  type        = number
  default     = 20
}
