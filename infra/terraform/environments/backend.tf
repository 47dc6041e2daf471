# Remote state in a GCS bucket per environment (versioned, uniform access, created once by hand:
# docs/deploy.md), named by the environment's backend configuration:
#   terraform init -backend-config=<environment>.gcs.tfbackend
# The GCS backend locks the state itself (a lock object beside it): no second apply can run at
# the same time.
terraform {
  backend "gcs" {}
}
