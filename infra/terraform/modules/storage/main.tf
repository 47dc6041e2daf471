# Buckets of the platform: Postgres logical backups and exports, and Dagster's compute logs
# (the runs' stdout/stderr). Uniform access, public access prevention enforced, object
# versioning, the platform's key (CMEK), lifecycle rules; Cloud Audit Logs record data access
# (environment main.tf).

resource "google_storage_bucket" "buckets" {
  # Cloud Audit Logs record every read and write of these buckets (DATA_READ and DATA_WRITE in
  # the environment's google_project_iam_audit_config); usage logs would be one more bucket to
  # protect for the same facts
  #checkov:skip=CKV_GCP_62:data access is recorded by Cloud Audit Logs (DATA_READ/DATA_WRITE)
  for_each = var.buckets

  project                     = var.project_id
  name                        = "${var.name}-${each.key}"
  location                    = var.region
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false
  labels                      = var.labels

  versioning {
    enabled = true
  }

  encryption {
    default_kms_key_name = var.kms_key_id
  }

  soft_delete_policy {
    retention_duration_seconds = 604800 # 7 days
  }

  # current objects leave after their retention; older versions after a week
  lifecycle_rule {
    condition {
      age        = each.value.retention_days
      with_state = "LIVE"
    }
    action {
      type = "Delete"
    }
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 7
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }
}

resource "google_storage_bucket_iam_member" "writers" {
  for_each = var.buckets

  bucket = google_storage_bucket.buckets[each.key].name
  role   = "roles/storage.objectAdmin"
  member = var.writer
}
