output "key_ids" {
  description = "Crypto key id by store: cloudsql, storage, gke, secrets, redis."
  value       = { for k, key in google_kms_crypto_key.keys : k => key.id }
}

output "bindings" {
  description = "The agents' key bindings: a store using a key must wait for them."
  value       = [for b in google_kms_crypto_key_iam_member.agents : b.id]
}
