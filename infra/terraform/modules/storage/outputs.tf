output "bucket_names" {
  description = "Bucket name by suffix (backups, dagster-compute)."
  value       = { for k, b in google_storage_bucket.buckets : k => b.name }
}
