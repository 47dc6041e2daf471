#!/usr/bin/env bash
# `make images`: build the platform's images with podman, offline from any registry.
#   1. the tools (infra/images/install.sh: podman, runc, debootstrap; quick when installed);
#   2. the base image (infra/images/base.sh: reused when built before);
#   3. latam/platform from the Dockerfile, tagged :latest, :dev (the compose file's default) and
#      :<git revision>.
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
# images and layer cache built on an earlier recipe of the base are of no use any more (only
# images carrying the base's label, and only those no container uses)
recipe=$(podman image inspect --format '{{index .Labels "org.latam.base.recipe"}}' "$base")
for old in $(podman images --all --format '{{index .Labels "org.latam.base.recipe"}}' | sort -u); do
  if [[ -n $old && $old != "<no value>" && $old != "$recipe" ]]; then
    podman image prune --all --force --filter "label=org.latam.base.recipe=${old}" >/dev/null 2>&1 || true
  fi
done

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
  --build-arg "PIP_INDEX_URL=${index_url}"
  # labels, not build arguments: every build argument is part of every layer's cache key
  --label "org.opencontainers.image.revision=${revision}"
  --label "org.opencontainers.image.created=${created}"
)
ca_bundle=${LATAM_BUILD_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
[[ -s $ca_bundle ]] && build_args+=(--secret "id=ca-bundle,src=${ca_bundle}")

step=$SECONDS
echo "images: building ${PLATFORM_IMAGE} on ${base}" >&2
podman build --quiet --format docker --layers --pull=never --network=host \
  "${build_args[@]}" --target runtime \
  --tag "${PLATFORM_IMAGE}:latest" --tag "${PLATFORM_IMAGE}:dev" --tag "${PLATFORM_IMAGE}:${revision}" \
  --file Dockerfile . >/dev/null
platform_seconds=$((SECONDS - step))

# one revision tag at a time: earlier builds' tags go (their layers stay, as cache)
podman images --filter "reference=${PLATFORM_IMAGE}" --format '{{.Repository}}:{{.Tag}}' \
  | grep -vE ":(latest|dev|${revision})$" | xargs -r -n1 podman untag >/dev/null 2>&1 || true
# No pruning here: the untagged layers of the deps and project stages are the next build's
# cache. `make images-clean` removes the images and that cache.

size() { podman image inspect --format '{{.Size}}' "$1" | awk '{printf "%.0f MB", $1 / 1e6}'; }
echo "images: base ${base_seconds} s, platform ${platform_seconds} s, total $((SECONDS - started)) s"
printf '  %-55s %s\n' "$base" "$(size "$base")"
printf '  %-55s %s\n' "${PLATFORM_IMAGE}:latest" "$(size "${PLATFORM_IMAGE}:latest")"
printf '  %-55s %s\n' "${PLATFORM_IMAGE}:dev, :${revision}" "(same image)"
