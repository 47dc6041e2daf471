#!/usr/bin/env bash
# The base image of the platform's images, built offline from Debian's packages (no registry):
# a minimal Debian bookworm (debootstrap, variant minbase) whose python3 is 3.11, with
# bookworm-updates and the security fixes applied, imported into podman as
#   localhost/latam/base:bookworm-<YYYYMMDD>-<recipe>
# where <recipe> is the first 12 hex digits of the SHA-256 of this script's code (comments left
# out): the package list and the steps below are the recipe, so changing them builds a new base. An image of the same recipe is reused (prints its
# name and exits) unless --refresh asks for a new one (newer security fixes): the Dockerfile takes
# the name as its BASE_IMAGE build argument.
#
# Usage: infra/images/base.sh [--refresh]     (stdout: the image name; progress on stderr)
#
# Downloaded packages are kept in .build/images/debs (git-ignored), so a rebuild downloads only
# what changed. Needs root (debootstrap, chroot) and podman: infra/images/install.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."

SUITE=bookworm
MIRROR=${LATAM_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${LATAM_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
# python3: the runtime (3.11 on bookworm); python3-venv: the build stage's installer venv;
# ca-certificates: TLS to the broker, Postgres and PyPI; tini: PID 1 (signals, zombie runs);
# nginx-light: the Dagster UI's authenticating proxy.
PACKAGES=(python3 python3-venv ca-certificates tini nginx-light)
REPOSITORY=localhost/latam/base
STATE=$PWD/.build/images

recipe=$(grep -v '^[[:space:]]*#' "$0" | sha256sum | cut -c1-12)
log() { echo "base: $*" >&2; }

if [[ ${1:-} != --refresh ]]; then
  # (images built on the base inherit its label: only this repository counts)
  existing=$(podman images --filter "reference=${REPOSITORY}" \
    --filter "label=org.latam.base.recipe=${recipe}" --format '{{.Repository}}:{{.Tag}}' | grep -v '<none>' | sort | tail -n1 || true)
  if [[ -n $existing ]]; then
    echo "$existing"
    exit 0
  fi
fi

if [[ $(id -u) -ne 0 ]]; then
  log "building the base needs root (debootstrap, chroot): run \`make images\` as root"
  exit 1
fi

created=$(date -u +%Y-%m-%dT%H:%M:%SZ)
tag="${REPOSITORY}:${SUITE}-$(date -u +%Y%m%d)-${recipe}"
rootfs="$STATE/rootfs-${recipe}"
tarball="$STATE/base-${recipe}.tar"
mkdir -p "$STATE/debs"

cleanup() {
  mountpoint -q "$rootfs/proc" && umount "$rootfs/proc"
  rm -rf "$rootfs" "$tarball"
}
trap cleanup EXIT
cleanup

started=$SECONDS
log "debootstrap ${SUITE} (${PACKAGES[*]}) from ${MIRROR}"
packages=$(IFS=,; echo "${PACKAGES[*]}")
if ! debootstrap --variant=minbase --cache-dir="$STATE/debs" --include="$packages" \
  "$SUITE" "$rootfs" "$MIRROR" >"$STATE/debootstrap.log" 2>&1; then
  tail -n 20 "$STATE/debootstrap.log" >&2
  log "debootstrap failed (whole log: $STATE/debootstrap.log)"
  exit 1
fi

# the same sources as a Debian image's, updates and security fixes included
rm -f "$rootfs/etc/apt/sources.list"
cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: ${MIRROR}
Suites: ${SUITE} ${SUITE}-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${SECURITY_MIRROR}
Suites: ${SUITE}-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
# no documentation, manual pages or translations in this image, nor in what is installed later
cat >"$rootfs/etc/dpkg/dpkg.cfg.d/latam-slim" <<'EOF'
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
EOF
# services never start inside the image build
printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
chmod 755 "$rootfs/usr/sbin/policy-rc.d"

log "applying ${SUITE}-updates and ${SUITE}-security"
mount -t proc proc "$rootfs/proc"
in_root() { chroot "$rootfs" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive "$@"; }
{
  in_root apt-get update -qq
  in_root apt-get -y -qq full-upgrade
  in_root apt-get clean
} >>"$STATE/debootstrap.log" 2>&1 || {
  tail -n 20 "$STATE/debootstrap.log" >&2
  log "the upgrade failed (whole log: $STATE/debootstrap.log)"
  exit 1
}
# shellcheck disable=SC2016 # dpkg-query's format, not the shell's
in_root dpkg-query -W -f '${Package}\t${Version}\n' >"$STATE/base-${recipe}.packages"
python_version=$(in_root python3 -c 'import platform; print(platform.python_version())')
umount "$rootfs/proc"

rm -f "$rootfs/usr/sbin/policy-rc.d"
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/log/* \
  "$rootfs"/var/cache/debconf/*-old "$rootfs"/var/lib/dpkg/*-old "$rootfs"/tmp/* \
  "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/*
find "$rootfs/usr/share/doc" -type f ! -name copyright -delete
find "$rootfs/usr/share/doc" -type d -empty -delete
find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
# podman provides these per container
: >"$rootfs/etc/resolv.conf"
: >"$rootfs/etc/hostname"

tar --numeric-owner --xattrs -C "$rootfs" -cf "$tarball" .
log "importing ${tag}"
podman import --quiet \
  --change "LABEL org.opencontainers.image.title=latam-base" \
  --change "LABEL org.opencontainers.image.description=Debian ${SUITE} minbase with Python ${python_version}, tini and nginx-light" \
  --change "LABEL org.opencontainers.image.created=${created}" \
  --change "LABEL org.opencontainers.image.version=${SUITE}-${python_version}" \
  --change "LABEL org.latam.base.recipe=${recipe}" \
  --change "ENV LANG=C.UTF-8" \
  --change 'CMD ["/bin/bash"]' \
  "$tarball" "$tag" >/dev/null
log "built ${tag} in $((SECONDS - started)) s (Python ${python_version}; packages: .build/images/base-${recipe}.packages)"
echo "$tag"
