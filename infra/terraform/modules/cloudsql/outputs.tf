output "primary_connection_name" {
  description = "project:region:instance of the primary (Cloud SQL Auth Proxy, connectors)."
  value       = google_sql_database_instance.primary.connection_name
}

output "primary_private_ip" {
  description = "Private IP of the primary."
  value       = google_sql_database_instance.primary.private_ip_address
}

output "replica_private_ip" {
  description = "Private IP of the read replica (null without one)."
  value       = one(google_sql_database_instance.replica[*].private_ip_address)
}

output "server_ca_cert" {
  description = "CA certificate of the instance's server certificate (sslrootcert for verify-full)."
  value       = google_sql_database_instance.primary.server_ca_cert[0].cert
}
