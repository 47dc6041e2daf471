# Customer-managed encryption keys (CMEK): one key per kind of store, each usable only by the
# Google service agent that encrypts that store. Keys rotate every 90 days and cannot be
# destroyed by Terraform (a destroyed key makes its data unreadable).

data "google_project" "this" {
  project_id = var.project_id
}

# The service agents are created on first use of their API; asking for their identity creates
# them now, so the key bindings below can name them.
resource "google_project_service_identity" "agents" {
  provider = google-beta
  for_each = toset(["sqladmin.googleapis.com", "secretmanager.googleapis.com", "redis.googleapis.com"])

  project = var.project_id
  service = each.value
}

data "google_storage_project_service_account" "gcs" {
  project = var.project_id
}

locals {
  number = data.google_project.this.number
  # which agent encrypts with which key
  agents = {
    cloudsql = ["serviceAccount:service-${local.number}@gcp-sa-cloud-sql.iam.gserviceaccount.com"]
    storage  = ["serviceAccount:${data.google_storage_project_service_account.gcs.email_address}"]
    # GKE's application-layer secrets encryption (etcd) and the nodes' boot disks
    gke = [
      "serviceAccount:service-${local.number}@container-engine-robot.iam.gserviceaccount.com",
      "serviceAccount:service-${local.number}@compute-system.iam.gserviceaccount.com",
    ]
    secrets = ["serviceAccount:service-${local.number}@gcp-sa-secretmanager.iam.gserviceaccount.com"]
    redis   = ["serviceAccount:service-${local.number}@cloud-redis.iam.gserviceaccount.com"]
  }
  bindings = merge([
    for key, members in local.agents : {
      for member in members : "${key}/${member}" => { key = key, member = member }
    }
  ]...)
}

resource "google_kms_key_ring" "ring" {
  project  = var.project_id
  name     = "${var.name}-keys"
  location = var.region
}

resource "google_kms_crypto_key" "keys" {
  for_each = local.agents

  name            = each.key
  key_ring        = google_kms_key_ring.ring.id
  purpose         = "ENCRYPT_DECRYPT"
  rotation_period = var.rotation_period

  version_template {
    algorithm        = "GOOGLE_SYMMETRIC_ENCRYPTION"
    protection_level = var.protection_level
  }

  labels = var.labels

  lifecycle {
    prevent_destroy = true
  }
}

resource "google_kms_crypto_key_iam_member" "agents" {
  for_each = local.bindings

  crypto_key_id = google_kms_crypto_key.keys[each.value.key].id
  role          = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
  member        = each.value.member

  depends_on = [google_project_service_identity.agents]
}
