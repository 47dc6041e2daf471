"""Software-defined assets: raw (drains), reference, curated, marts."""
