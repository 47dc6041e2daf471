# The GKE cluster the platform runs on: private nodes (no public IPs; outbound through Cloud NAT),
# a control plane reachable only from the listed networks, Workload Identity (pods act as
# Google service accounts, no keys), shielded nodes with secure boot, Kubernetes secrets
# encrypted in etcd with the platform's key (CMEK), Dataplane V2 (network policies enforced).

resource "google_service_account" "nodes" {
  project      = var.project_id
  account_id   = "${var.name}-gke-nodes"
  display_name = "GKE nodes of ${var.name}"
}

# the least a node needs: write logs and metrics
resource "google_project_iam_member" "nodes" {
  for_each = toset([
    "roles/logging.logWriter",
    "roles/monitoring.metricWriter",
    "roles/monitoring.viewer",
    "roles/stackdriver.resourceMetadata.writer",
  ])

  project = var.project_id
  role    = each.value
  member  = "serviceAccount:${google_service_account.nodes.email}"
}

resource "google_container_cluster" "cluster" {
  # Dataplane V2 (datapath_provider ADVANCED_DATAPATH) enforces network policies itself; the
  # network_policy block the check looks for is the older Calico add-on, which GKE refuses beside it
  #checkov:skip=CKV_GCP_12:network policies are enforced by Dataplane V2 (ADVANCED_DATAPATH)
  provider = google

  project             = var.project_id
  name                = "${var.name}-gke"
  location            = var.region
  network             = var.network_id
  subnetwork          = var.subnetwork_id
  deletion_protection = true
  resource_labels     = var.labels

  # node pools are managed below
  remove_default_node_pool = true
  initial_node_count       = 1

  networking_mode   = "VPC_NATIVE"
  datapath_provider = "ADVANCED_DATAPATH"
  ip_allocation_policy {
    cluster_secondary_range_name  = var.pods_range_name
    services_secondary_range_name = var.services_range_name
  }

  private_cluster_config {
    enable_private_nodes    = true
    enable_private_endpoint = var.private_endpoint
    master_ipv4_cidr_block  = var.master_cidr
    master_global_access_config {
      enabled = false
    }
  }

  master_authorized_networks_config {
    dynamic "cidr_blocks" {
      for_each = var.master_authorized_networks
      content {
        cidr_block   = cidr_blocks.value.cidr_block
        display_name = cidr_blocks.value.display_name
      }
    }
  }

  workload_identity_config {
    workload_pool = "${var.project_id}.svc.id.goog"
  }

  # Kubernetes RBAC bindings name Google Groups, members of this group's nested groups
  authenticator_groups_config {
    security_group = var.rbac_security_group
  }

  enable_shielded_nodes       = true
  enable_intranode_visibility = true

  database_encryption {
    state    = "ENCRYPTED"
    key_name = var.kms_key_id
  }

  release_channel {
    channel = var.release_channel
  }

  master_auth {
    client_certificate_config {
      issue_client_certificate = false
    }
  }

  binary_authorization {
    evaluation_mode = "PROJECT_SINGLETON_POLICY_ENFORCE"
  }

  security_posture_config {
    mode               = "BASIC"
    vulnerability_mode = "VULNERABILITY_BASIC"
  }

  addons_config {
    http_load_balancing {
      disabled = false
    }
    gce_persistent_disk_csi_driver_config {
      enabled = true
    }
  }

  # the Secret Manager CSI driver mounts the platform's secrets as files in the pods
  secret_manager_config {
    enabled = true
  }

  logging_config {
    enable_components = ["SYSTEM_COMPONENTS", "WORKLOADS"]
  }

  monitoring_config {
    enable_components = ["SYSTEM_COMPONENTS"]
    managed_prometheus {
      enabled = true
    }
  }

  maintenance_policy {
    recurring_window {
      start_time = "2024-01-07T04:00:00Z"
      end_time   = "2024-01-07T08:00:00Z"
      recurrence = "FREQ=WEEKLY;BYDAY=SA,SU"
    }
  }

  # the default pool's settings, should GKE ever create nodes in it before its removal
  node_config {
    service_account = google_service_account.nodes.email
    oauth_scopes    = ["https://www.googleapis.com/auth/cloud-platform"]
    shielded_instance_config {
      enable_secure_boot          = true
      enable_integrity_monitoring = true
    }
    workload_metadata_config {
      mode = "GKE_METADATA"
    }
    metadata = {
      disable-legacy-endpoints = "true"
    }
  }
}

resource "google_container_node_pool" "platform" {
  project  = var.project_id
  name     = "platform"
  location = var.region
  cluster  = google_container_cluster.cluster.name

  autoscaling {
    min_node_count = var.min_nodes
    max_node_count = var.max_nodes
  }

  management {
    auto_repair  = true
    auto_upgrade = true
  }

  upgrade_settings {
    max_surge       = 1
    max_unavailable = 0
  }

  node_config {
    machine_type      = var.machine_type
    image_type        = "COS_CONTAINERD"
    disk_type         = "pd-balanced"
    disk_size_gb      = 100
    boot_disk_kms_key = var.kms_key_id
    service_account   = google_service_account.nodes.email
    oauth_scopes      = ["https://www.googleapis.com/auth/cloud-platform"]
    labels            = var.labels

    shielded_instance_config {
      enable_secure_boot          = true
      enable_integrity_monitoring = true
    }

    workload_metadata_config {
      mode = "GKE_METADATA"
    }

    metadata = {
      disable-legacy-endpoints = "true"
    }
  }
}

# The platform's pods (Kubernetes service account latam/latam-platform) act as this Google
# service account through Workload Identity: Cloud SQL client, the compute-log bucket, the
# secrets (granted by the secrets and storage modules).
resource "google_service_account" "platform" {
  project      = var.project_id
  account_id   = "${var.name}-platform"
  display_name = "LATAM platform workloads (${var.name})"
}

resource "google_service_account_iam_member" "workload_identity" {
  for_each = toset(var.workload_identity_ksas)

  service_account_id = google_service_account.platform.name
  role               = "roles/iam.workloadIdentityUser"
  member             = "serviceAccount:${var.project_id}.svc.id.goog[${each.value}]"
}

resource "google_project_iam_member" "platform_sql" {
  project = var.project_id
  role    = "roles/cloudsql.client"
  member  = "serviceAccount:${google_service_account.platform.email}"
}
