# Memorystore for Redis (optional): the API's rate-limit counters, shared by every replica.
# Private services access only, AUTH and in-transit encryption on, the platform's key (CMEK).
# The AUTH string is read from the instance by the deploy (Kubernetes secret), never written here.

resource "google_redis_instance" "cache" {
  project                 = var.project_id
  name                    = "${var.name}-redis"
  region                  = var.region
  tier                    = var.tier
  memory_size_gb          = var.memory_size_gb
  redis_version           = "REDIS_7_2"
  authorized_network      = var.network_id
  connect_mode            = "PRIVATE_SERVICE_ACCESS"
  auth_enabled            = true
  transit_encryption_mode = "SERVER_AUTHENTICATION"
  customer_managed_key    = var.kms_key_id
  labels                  = var.labels

  redis_configs = {
    maxmemory-policy = "volatile-ttl"
  }

  maintenance_policy {
    weekly_maintenance_window {
      day = "SUNDAY"
      start_time {
        hours   = 5
        minutes = 0
      }
    }
  }
}
