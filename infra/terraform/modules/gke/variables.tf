variable "project_id" {
  description = "GCP project of the environment."
  type        = string
}

variable "name" {
  description = "Prefix of the resource names."
  type        = string
}

variable "region" {
  description = "Region of the (regional) cluster."
  type        = string
}

variable "network_id" {
  description = "VPC of the cluster."
  type        = string
}

variable "subnetwork_id" {
  description = "Node subnet."
  type        = string
}

variable "pods_range_name" {
  description = "Secondary range of the pods."
  type        = string
}

variable "services_range_name" {
  description = "Secondary range of the services."
  type        = string
}

variable "master_cidr" {
  description = "/28 range of the control plane's private endpoint."
  type        = string
}

variable "private_endpoint" {
  description = "Control plane reachable on its private endpoint only (deploys then run from inside the VPC)."
  type        = bool
  default     = false
}

variable "master_authorized_networks" {
  description = "Networks allowed to reach the control plane (never 0.0.0.0/0)."
  type = list(object({
    cidr_block   = string
    display_name = string
  }))
  validation {
    condition     = alltrue([for n in var.master_authorized_networks : n.cidr_block != "0.0.0.0/0"])
    error_message = "The control plane is never open to the internet: 0.0.0.0/0 is not allowed."
  }
}

variable "kms_key_id" {
  description = "Cloud KMS key (CMEK) of the etcd secrets and the nodes' boot disks."
  type        = string
}

variable "release_channel" {
  description = "GKE release channel."
  type        = string
  default     = "REGULAR"
}

variable "machine_type" {
  description = "Machine type of the platform's nodes."
  type        = string
}

variable "min_nodes" {
  description = "Fewest nodes per zone."
  type        = number
}

variable "max_nodes" {
  description = "Most nodes per zone."
  type        = number
}

variable "workload_identity_ksas" {
  description = "Kubernetes service accounts (namespace/name) that act as the platform's Google service account."
  type        = list(string)
  default     = ["latam/latam-platform", "dagster/dagster"]
}

variable "labels" {
  description = "Labels of the cluster and nodes."
  type        = map(string)
  default     = {}
}

variable "rbac_security_group" {
  description = "Google Group (gke-security-groups@<domain>) whose nested groups RBAC bindings may name."
  type        = string
}
