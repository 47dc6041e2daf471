output "cluster_name" {
  description = "GKE cluster (gcloud container clusters get-credentials <name> --region <region>)."
  value       = module.gke.cluster_name
}

output "platform_service_account" {
  description = "Google service account of the platform's pods (Workload Identity annotation)."
  value       = module.gke.platform_service_account
}

output "sql_connection_name" {
  description = "Cloud SQL primary."
  value       = module.cloudsql.primary_connection_name
}

output "sql_private_ip" {
  description = "Private IP of the Cloud SQL primary."
  value       = module.cloudsql.primary_private_ip
}

output "sql_replica_private_ip" {
  description = "Private IP of the read replica."
  value       = module.cloudsql.replica_private_ip
}

output "buckets" {
  description = "Backup and compute-log buckets."
  value       = module.storage.bucket_names
}

output "secret_ids" {
  description = "Secret Manager secrets to fill in (docs/deploy.md)."
  value       = module.secrets.secret_ids
}

output "redis_host" {
  description = "Memorystore private IP (null when disabled)."
  value       = one(module.redis[*].host)
}
