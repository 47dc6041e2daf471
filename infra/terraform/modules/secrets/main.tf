# The platform's secrets in Secret Manager: the secrets exist here, their values never do. An
# operator adds each version (`gcloud secrets versions add ... --data-file=-`, docs/deploy.md);
# the pods read them as files (External Secrets Operator or the Secret Manager CSI driver) that
# the *_FILE variables name. Replicated in the platform's region only, encrypted with the platform's key (CMEK).

resource "google_secret_manager_secret" "secrets" {
  for_each = toset(var.secret_ids)

  project   = var.project_id
  secret_id = "${var.name}-${each.value}"
  labels    = merge(var.labels, { "latam-secret" = each.value })

  replication {
    user_managed {
      replicas {
        location = var.region
        customer_managed_encryption {
          kms_key_name = var.kms_key_id
        }
      }
    }
  }
}

# The platform's workload identity reads the secrets, and nothing else does.
resource "google_secret_manager_secret_iam_member" "accessor" {
  for_each = google_secret_manager_secret.secrets

  project   = var.project_id
  secret_id = each.value.secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = var.accessor
}
