#!/usr/bin/env bash
# `make images`: build the platform's images with podman, offline from any registry.
#   1. the tools (infra/images/install.sh: podman, runc, debootstrap; quick when installed);
#   2. the base image (infra/images/base.sh: reused when built before);
#   3. latam/platform from the Dockerfile, tagged :latest and :<git revision>.
# Prints how long each step took and the images' sizes.
#
# The build reads PyPI as pip does on this machine: the host's CA bundle goes in as the build
# secret `ca-bundle` (LATAM_BUILD_CA_BUNDLE, default /etc/ssl/certs/ca-certificates.crt) and a
# package index configured for pip (PIP_INDEX_URL, or pip's global.index-url) as the build
# argument PIP_INDEX_URL. Local find-links or file:// indexes of the host are not visible to the
# build and are left out; every locked package is on PyPI.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=infra/images/env.sh
source infra/images/env.sh

started=$SECONDS
bash infra/images/install.sh
step=$SECONDS
base=$(bash infra/images/base.sh "$@")
base_seconds=$((SECONDS - step))
base_digest=$(podman image inspect --format '{{.Digest}}' "$base")

revision=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
if [[ $revision != unknown ]] && [[ -n $(git status --porcelain --untracked-files=no 2>/dev/null) ]]; then
  revision="${revision}-dirty"
fi
created=$(git log -1 --format=%cI 2>/dev/null || date -u +%Y-%m-%dT%H:%M:%SZ)
version=$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -n1)
index_url=${PIP_INDEX_URL:-$(pip config get global.index-url 2>/dev/null || true)}
[[ $index_url == http* ]] || index_url=""

build_args=(
  --build-arg "BASE_IMAGE=${base}"
  --build-arg "BASE_DIGEST=${base_digest}"
  --build-arg "UV_VERSION=${UV_VERSION:-0.13.9}"
  --build-arg "VERSION=${version}"
  --build-arg "REVISION=${revision}"
  --build-arg "CREATED=${created}"
  --build-arg "PIP_INDEX_URL=${index_url}"
)
ca_bundle=${LATAM_BUILD_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
[[ -s $ca_bundle ]] && build_args+=(--secret "id=ca-bundle,src=${ca_bundle}")

step=$SECONDS
echo "images: building ${PLATFORM_IMAGE} on ${base}" >&2
podman build --quiet --format docker --layers --pull=never --network=host \
  "${build_args[@]}" --target runtime \
  --tag "${PLATFORM_IMAGE}:latest" --tag "${PLATFORM_IMAGE}:${revision}" \
  --file Dockerfile . >/dev/null
platform_seconds=$((SECONDS - step))

# layers nothing refers to any more (earlier builds of the same stages)
podman image prune --force >/dev/null 2>&1 || true

size() { podman image inspect --format '{{.Size}}' "$1" | awk '{printf "%.0f MB", $1 / 1e6}'; }
echo "images: base ${base_seconds} s, platform ${platform_seconds} s, total $((SECONDS - started)) s"
printf '  %-55s %s\n' "$base" "$(size "$base")"
printf '  %-55s %s\n' "${PLATFORM_IMAGE}:latest" "$(size "${PLATFORM_IMAGE}:latest")"
printf '  %-55s %s\n' "${PLATFORM_IMAGE}:${revision}" "(same image)"
