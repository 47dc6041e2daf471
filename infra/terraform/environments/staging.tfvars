# Staging: terraform plan -var-file=staging.tfvars (variables.tf has the defaults). Staging keeps
# Cloud SQL in one zone and Redis in the cluster (cheaper).

project_id    = "latam-data-staging"
environment   = "staging"
region        = "southamerica-east1"
nodes_cidr    = "10.20.0.0/20"
pods_cidr     = "10.24.0.0/14"
services_cidr = "10.28.0.0/20"
master_cidr   = "172.16.20.0/28"

# the deploy runners' egress and the operators' VPN (replace with the organisation's ranges)
master_authorized_networks = [
  { cidr_block = "10.255.0.0/24", display_name = "operators-vpn" },
]

gke_rbac_security_group = "gke-security-groups@latam.example"
gke_machine_type        = "e2-standard-4"
gke_min_nodes           = 1
gke_max_nodes           = 3

# staging keeps one zone (cheaper); production is REGIONAL
sql_tier              = "db-custom-2-7680"
sql_replica_tier      = "db-custom-2-7680"
sql_availability_type = "ZONAL"
sql_disk_size_gb      = 50
sql_retained_backups  = 7

enable_redis = false
