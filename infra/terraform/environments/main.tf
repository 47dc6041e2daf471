# The LATAM data platform on GCP, one environment of it: network, keys, GKE, Cloud SQL, secrets,
# buckets and (optionally) Memorystore. This is the one root of every environment: the
# environment's values are a variables file (staging.tfvars, production.tfvars) and its state
# bucket a backend configuration (staging.gcs.tfbackend, production.gcs.tfbackend), so the two
# environments differ in those values only:
#   terraform init -backend-config=staging.gcs.tfbackend
#   terraform plan -var-file=staging.tfvars -out tfplan
#
# The environments' state predates this root: each `moved` block carries an address of the
# former `module "platform"` call to its place here, so a plan finds the resources as they are.

locals {
  name = "latam-${var.environment}"
  labels = {
    platform    = "latam-data"
    environment = var.environment
    managed-by  = "terraform"
  }
}

resource "google_project_service" "apis" {
  for_each = toset([
    "cloudkms.googleapis.com",
    "compute.googleapis.com",
    "container.googleapis.com",
    "iam.googleapis.com",
    "redis.googleapis.com",
    "secretmanager.googleapis.com",
    "servicenetworking.googleapis.com",
    "sqladmin.googleapis.com",
    "storage.googleapis.com",
  ])

  project            = var.project_id
  service            = each.value
  disable_on_destroy = false
}

moved {
  from = module.platform.google_project_service.apis
  to   = google_project_service.apis
}

# Data access to the buckets and secrets is recorded in Cloud Audit Logs.
resource "google_project_iam_audit_config" "data_access" {
  for_each = toset(["storage.googleapis.com", "secretmanager.googleapis.com", "cloudsql.googleapis.com"])

  project = var.project_id
  service = each.value

  audit_log_config {
    log_type = "DATA_READ"
  }

  audit_log_config {
    log_type = "DATA_WRITE"
  }
}

moved {
  from = module.platform.google_project_iam_audit_config.data_access
  to   = google_project_iam_audit_config.data_access
}

module "network" {
  source = "../modules/network"

  project_id    = var.project_id
  name          = local.name
  region        = var.region
  nodes_cidr    = var.nodes_cidr
  pods_cidr     = var.pods_cidr
  services_cidr = var.services_cidr

  depends_on = [google_project_service.apis]
}

moved {
  from = module.platform.module.network
  to   = module.network
}

module "kms" {
  source = "../modules/kms"

  project_id = var.project_id
  name       = local.name
  region     = var.region
  labels     = local.labels

  depends_on = [google_project_service.apis]
}

moved {
  from = module.platform.module.kms
  to   = module.kms
}

module "gke" {
  source = "../modules/gke"

  project_id                 = var.project_id
  name                       = local.name
  region                     = var.region
  network_id                 = module.network.network_id
  subnetwork_id              = module.network.subnetwork_id
  pods_range_name            = module.network.pods_range_name
  services_range_name        = module.network.services_range_name
  master_cidr                = var.master_cidr
  master_authorized_networks = var.master_authorized_networks
  rbac_security_group        = var.gke_rbac_security_group
  kms_key_id                 = module.kms.key_ids["gke"]
  machine_type               = var.gke_machine_type
  min_nodes                  = var.gke_min_nodes
  max_nodes                  = var.gke_max_nodes
  labels                     = local.labels

  depends_on = [module.kms]
}

moved {
  from = module.platform.module.gke
  to   = module.gke
}

module "cloudsql" {
  source = "../modules/cloudsql"

  project_id        = var.project_id
  name              = local.name
  region            = var.region
  network_id        = module.network.network_id
  kms_key_id        = module.kms.key_ids["cloudsql"]
  tier              = var.sql_tier
  replica_tier      = var.sql_replica_tier
  availability_type = var.sql_availability_type
  disk_size_gb      = var.sql_disk_size_gb
  retained_backups  = var.sql_retained_backups
  labels            = local.labels

  # private IPs come from the peering; the key must be usable by Cloud SQL's agent first
  depends_on = [module.network, module.kms]
}

moved {
  from = module.platform.module.cloudsql
  to   = module.cloudsql
}

module "secrets" {
  source = "../modules/secrets"

  project_id = var.project_id
  name       = local.name
  region     = var.region
  kms_key_id = module.kms.key_ids["secrets"]
  accessor   = module.gke.platform_member
  labels     = local.labels
  # one secret per value the platform reads from a file (*_FILE variables, docs/deploy.md)
  secret_ids = [
    "warehouse-url",
    "pipeline-database-url",
    "api-database-url",
    "exporter-database-url",
    "dagster-pg-url",
    "amqp-url",
    "rabbitmq-management-url",
    "pii-hash-key",
    "api-cursor-secret",
    "api-session-secret",
    "ui-analyst-htpasswd",
    "ui-operator-htpasswd",
    "ui-roles-map",
    "grafana-admin-password",
    "pg-owner-password",
    "pg-pipeline-password",
    "pg-exporter-password",
    "pg-api-password",
    "pg-dagster-password",
  ]

  depends_on = [module.kms]
}

moved {
  from = module.platform.module.secrets
  to   = module.secrets
}

module "storage" {
  source = "../modules/storage"

  project_id = var.project_id
  name       = "${var.bucket_prefix}-${var.environment}"
  region     = var.region
  kms_key_id = module.kms.key_ids["storage"]
  writer     = module.gke.platform_member
  labels     = local.labels

  depends_on = [module.kms]
}

moved {
  from = module.platform.module.storage
  to   = module.storage
}

module "redis" {
  source = "../modules/redis"
  count  = var.enable_redis ? 1 : 0

  project_id     = var.project_id
  name           = local.name
  region         = var.region
  network_id     = module.network.network_id
  kms_key_id     = module.kms.key_ids["redis"]
  tier           = var.redis_tier
  memory_size_gb = var.redis_memory_size_gb
  labels         = local.labels

  depends_on = [module.network, module.kms]
}

moved {
  from = module.platform.module.redis
  to   = module.redis
}
