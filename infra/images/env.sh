# shellcheck shell=bash
# Sourced by the image scripts and the image test's helpers: podman's settings for this project
# (runc, explicit ulimits: infra/images/containers.conf) and the image names.
_latam_images_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export CONTAINERS_CONF=${CONTAINERS_CONF:-${_latam_images_dir}/containers.conf}
export PLATFORM_IMAGE=${PLATFORM_IMAGE:-localhost/latam/platform}
unset _latam_images_dir
