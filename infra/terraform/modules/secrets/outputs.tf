output "secret_ids" {
  description = "Full secret id by short name."
  value       = { for k, s in google_secret_manager_secret.secrets : k => s.id }
}
