output "cluster_name" {
  description = "Name of the cluster (gcloud container clusters get-credentials)."
  value       = google_container_cluster.cluster.name
}

output "platform_service_account" {
  description = "Email of the platform's Google service account (annotation iam.gke.io/gcp-service-account)."
  value       = google_service_account.platform.email
}

output "platform_member" {
  description = "IAM member of the platform's Google service account."
  value       = "serviceAccount:${google_service_account.platform.email}"
}
