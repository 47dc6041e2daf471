output "host" {
  description = "Private IP of the instance."
  value       = google_redis_instance.cache.host
}

output "port" {
  description = "Port of the instance (TLS)."
  value       = google_redis_instance.cache.port
}
