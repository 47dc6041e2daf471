# The warehouse and Dagster's instance storage: Cloud SQL for PostgreSQL on a private IP only
# (no public address, no authorized networks), TLS with a client certificate required (the pods
# connect through the Cloud SQL Auth Proxy sidecar, which authenticates with the workload's IAM
# identity and brings an ephemeral client certificate; docs/deploy.md), encrypted with the
# platform's key (CMEK), daily backups with point-in-time recovery, deletion protection at both the API and
# Terraform level, and a read replica for the REST API's reads and the exporter.
#
# Users and passwords are not made here: their passwords live in Secret Manager (module
# `secrets`, versions added by an operator) and never in Terraform state. docs/deploy.md has the
# commands.

resource "google_sql_database_instance" "primary" {
  # the major version is the newest the platform's migrations and tests have run on (17); 18 comes
  # after a test run on it, as an in-place major upgrade
  #checkov:skip=CKV_GCP_79:major version follows what the platform is tested on (PostgreSQL 17)
  # log_duration writes a line for every statement the pipeline and the API run (thousands a
  # minute); Query Insights records statement latencies without that volume
  #checkov:skip=CKV2_GCP_13:statement latencies come from Query Insights, not a log line per statement
  project             = var.project_id
  name                = "${var.name}-pg"
  region              = var.region
  database_version    = var.database_version
  encryption_key_name = var.kms_key_id
  deletion_protection = true

  settings {
    tier                        = var.tier
    edition                     = "ENTERPRISE"
    availability_type           = var.availability_type
    deletion_protection_enabled = true
    disk_type                   = "PD_SSD"
    disk_size                   = var.disk_size_gb
    disk_autoresize             = true
    user_labels                 = var.labels

    ip_configuration {
      ipv4_enabled                                  = false
      private_network                               = var.network_id
      ssl_mode                                      = "TRUSTED_CLIENT_CERTIFICATE_REQUIRED"
      enable_private_path_for_google_cloud_services = true
    }

    backup_configuration {
      enabled                        = true
      point_in_time_recovery_enabled = true
      start_time                     = "03:00"
      transaction_log_retention_days = 7

      backup_retention_settings {
        retained_backups = var.retained_backups
        retention_unit   = "COUNT"
      }
    }

    maintenance_window {
      day          = 7
      hour         = 4
      update_track = "stable"
    }

    insights_config {
      query_insights_enabled  = true
      record_application_tags = true
      record_client_address   = false
    }

    password_validation_policy {
      enable_password_policy      = true
      min_length                  = 20
      complexity                  = "COMPLEXITY_DEFAULT"
      disallow_username_substring = true
    }

    # connection, lock, error and DDL logging; pgaudit records the owner's DDL and role changes
    database_flags {
      name  = "log_checkpoints"
      value = "on"
    }

    database_flags {
      name  = "log_connections"
      value = "on"
    }

    database_flags {
      name  = "log_disconnections"
      value = "on"
    }

    database_flags {
      name  = "log_lock_waits"
      value = "on"
    }

    database_flags {
      name  = "log_min_messages"
      value = "error"
    }

    database_flags {
      name  = "log_min_error_statement"
      value = "error"
    }

    database_flags {
      name  = "log_temp_files"
      value = "0"
    }

    database_flags {
      name  = "log_min_duration_statement"
      value = "-1"
    }

    database_flags {
      name  = "log_hostname"
      value = "on"
    }

    database_flags {
      name  = "log_statement"
      value = "ddl"
    }

    database_flags {
      name  = "cloudsql.enable_pgaudit"
      value = "on"
    }

    database_flags {
      name  = "pgaudit.log"
      value = "ddl,role"
    }
  }

  lifecycle {
    prevent_destroy = true
  }
}

# The read replica: same region, same key, private IP only. Replicas take no backups of their
# own (Cloud SQL backs up the primary); PITR is the primary's.
resource "google_sql_database_instance" "replica" {
  # the major version is the newest the platform's migrations and tests have run on (17); 18 comes
  # after a test run on it, as an in-place major upgrade
  #checkov:skip=CKV_GCP_79:major version follows what the platform is tested on (PostgreSQL 17)
  # a replica cannot take backups: Cloud SQL backs up the primary, and PITR is the primary's
  #checkov:skip=CKV_GCP_14:read replicas have no backup configuration; the primary's backups and PITR cover the data
  # log_duration writes a line for every statement the pipeline and the API run (thousands a
  # minute); Query Insights records statement latencies without that volume
  #checkov:skip=CKV2_GCP_13:statement latencies come from Query Insights, not a log line per statement
  count = var.read_replica ? 1 : 0

  project              = var.project_id
  name                 = "${var.name}-pg-replica"
  region               = var.region
  database_version     = var.database_version
  master_instance_name = google_sql_database_instance.primary.name
  encryption_key_name  = var.kms_key_id
  deletion_protection  = true

  replica_configuration {
    failover_target = false
  }

  settings {
    tier                        = var.replica_tier
    edition                     = "ENTERPRISE"
    availability_type           = "ZONAL"
    deletion_protection_enabled = true
    disk_type                   = "PD_SSD"
    disk_autoresize             = true
    user_labels                 = var.labels

    ip_configuration {
      ipv4_enabled    = false
      private_network = var.network_id
      ssl_mode        = "TRUSTED_CLIENT_CERTIFICATE_REQUIRED"
    }

    insights_config {
      query_insights_enabled = true
    }

    # connection, lock, error and DDL logging; pgaudit records the owner's DDL and role changes
    database_flags {
      name  = "log_checkpoints"
      value = "on"
    }

    database_flags {
      name  = "log_connections"
      value = "on"
    }

    database_flags {
      name  = "log_disconnections"
      value = "on"
    }

    database_flags {
      name  = "log_lock_waits"
      value = "on"
    }

    database_flags {
      name  = "log_min_messages"
      value = "error"
    }

    database_flags {
      name  = "log_min_error_statement"
      value = "error"
    }

    database_flags {
      name  = "log_temp_files"
      value = "0"
    }

    database_flags {
      name  = "log_min_duration_statement"
      value = "-1"
    }

    database_flags {
      name  = "log_hostname"
      value = "on"
    }

    database_flags {
      name  = "log_statement"
      value = "ddl"
    }

    database_flags {
      name  = "cloudsql.enable_pgaudit"
      value = "on"
    }

    database_flags {
      name  = "pgaudit.log"
      value = "ddl,role"
    }
  }

  lifecycle {
    prevent_destroy = true
  }
}

resource "google_sql_database" "databases" {
  for_each = toset(var.databases)

  project  = var.project_id
  instance = google_sql_database_instance.primary.name
  name     = each.value
}
