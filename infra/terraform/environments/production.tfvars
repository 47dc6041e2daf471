# Production: terraform plan -var-file=production.tfvars (variables.tf has the defaults).
# Production runs Cloud SQL REGIONAL (a standby in a second zone) and Memorystore.

project_id    = "latam-data-production"
environment   = "production"
region        = "southamerica-east1"
nodes_cidr    = "10.40.0.0/20"
pods_cidr     = "10.44.0.0/14"
services_cidr = "10.48.0.0/20"
master_cidr   = "172.16.40.0/28"

# the deploy runners' egress and the operators' VPN (replace with the organisation's ranges)
master_authorized_networks = [
  { cidr_block = "10.255.0.0/24", display_name = "operators-vpn" },
]

gke_rbac_security_group = "gke-security-groups@latam.example"
gke_machine_type        = "e2-standard-8"
gke_min_nodes           = 1
gke_max_nodes           = 5

# a standby in a second zone with automatic failover
sql_tier              = "db-custom-4-15360"
sql_replica_tier      = "db-custom-4-15360"
sql_availability_type = "REGIONAL"
sql_disk_size_gb      = 200
sql_retained_backups  = 30

enable_redis         = true
redis_tier           = "STANDARD_HA"
redis_memory_size_gb = 1
