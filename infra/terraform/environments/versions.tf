# The one place the Terraform and provider versions are pinned: the modules this root calls use
# hashicorp/google and hashicorp/google-beta, the default sources of their provider names, under
# these constraints.
terraform {
  required_version = ">= 1.6"
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 6.20, < 7.0"
    }
    google-beta = {
      source  = "hashicorp/google-beta"
      version = ">= 6.20, < 7.0"
    }
  }
}
