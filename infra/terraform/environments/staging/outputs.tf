# Everything the platform module exports (modules/platform/outputs.tf), as one object:
# terraform output -json platform | jq -r .cluster_name
output "platform" {
  description = "Outputs of the platform module: cluster, service account, Cloud SQL, buckets, secrets, Redis."
  value       = module.platform
}
