#!/usr/bin/env bash
# Install the system tools the observability checks and tests need, when they are missing:
#   - promtool + prometheus (Debian `prometheus`): rule unit tests, config checks, the real-
#     Prometheus integration test;
#   - chromium + chromium-driver: the headless browser test of the Dagster UI and Data Docs;
#   - nginx (Debian `nginx-light`): the Dagster UI's authenticating proxy (`latam demo`, tests);
#   - the RabbitMQ management plugin: queue statistics the exporter turns into the age of the
#     oldest message (quorum queues report no head timestamp).
# Idempotent and quiet when everything is there. Debian packages only; nothing is downloaded
# outside the package manager.
set -euo pipefail

missing=()
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
# /usr/sbin is not on every user's PATH
{ command -v nginx || [[ -x /usr/sbin/nginx ]]; } >/dev/null 2>&1 || missing+=(nginx-light)

if ((${#missing[@]})); then
  packages=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
  echo "installing: ${packages}"
  export DEBIAN_FRONTEND=noninteractive
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  # shellcheck disable=SC2086
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends ${packages} fonts-dejavu-core >/dev/null
fi

# The Debian package may start a Prometheus service of its own; the tests start theirs.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
  systemctl stop prometheus || true
fi

if command -v rabbitmq-plugins >/dev/null 2>&1; then
  if ! rabbitmq-plugins list -e -m 2>/dev/null | grep -qx rabbitmq_management; then
    echo "enabling the RabbitMQ management plugin"
    rabbitmq-plugins enable rabbitmq_management >/dev/null 2>&1 \
      || rabbitmq-plugins enable --offline rabbitmq_management >/dev/null
  fi
fi
