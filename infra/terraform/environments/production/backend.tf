# Remote state in a GCS bucket of its own (versioned, uniform access, created once by hand:
# docs/deploy.md). The GCS backend locks the state itself (a lock object beside it): no second
# apply can run at the same time.
terraform {
  backend "gcs" {
    bucket = "latam-data-tfstate-production"
    prefix = "platform"
  }
}
