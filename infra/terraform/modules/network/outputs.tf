output "network_id" {
  description = "Self link of the VPC."
  value       = google_compute_network.vpc.id
}

output "network_name" {
  description = "Name of the VPC."
  value       = google_compute_network.vpc.name
}

output "subnetwork_id" {
  description = "Self link of the node subnet."
  value       = google_compute_subnetwork.nodes.id
}

output "pods_range_name" {
  description = "Secondary range of the pods."
  value       = "pods"
}

output "services_range_name" {
  description = "Secondary range of the services."
  value       = "services"
}

output "private_services_connection" {
  description = "The peering that Cloud SQL and Memorystore private IPs depend on."
  value       = google_service_networking_connection.private_services.id
}
