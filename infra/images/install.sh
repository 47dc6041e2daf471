#!/usr/bin/env bash
# Install what building and running the platform's images needs, when it is missing (Debian
# packages only): podman with the runc runtime, conmon and catatonit (the containers' init),
# debootstrap (the base image is built from Debian's packages, no registry needed).
# Idempotent and quiet when everything is there.
set -euo pipefail

missing=()
command -v podman >/dev/null 2>&1 || missing+=(podman)
command -v runc >/dev/null 2>&1 || missing+=(runc)
command -v conmon >/dev/null 2>&1 || missing+=(conmon)
[[ -x /usr/libexec/podman/catatonit || -x /usr/bin/catatonit ]] || missing+=(catatonit)
{ command -v debootstrap || [[ -x /usr/sbin/debootstrap ]]; } >/dev/null 2>&1 || missing+=(debootstrap)

if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
