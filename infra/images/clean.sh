#!/usr/bin/env bash
# `make images-clean`: remove the platform's images (latam/platform, latam/base), the layer cache
# of their builds and .build/images (the base's rootfs work files and downloaded packages). Only
# images built on the platform's base are touched (every one of them carries the base's label
# org.latam.base.recipe), and only those no container uses. The next `make images` is a cold build.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=infra/images/env.sh
source infra/images/env.sh

# unused images only: a container still running on one keeps it (and is left alone)
before=$(podman images --all --quiet --filter label=org.latam.base.recipe | sort -u | wc -l)
podman image prune --all --force --filter label=org.latam.base.recipe >/dev/null
after=$(podman images --all --quiet --filter label=org.latam.base.recipe | sort -u | wc -l)
rm -rf .build/images
echo "images-clean: removed $((before - after)) image(s) and layer(s) and .build/images;" \
  "${after} still used by containers"
