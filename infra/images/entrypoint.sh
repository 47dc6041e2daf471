#!/bin/sh
# The command of the latam/platform image (installed as /usr/local/bin/latam-entrypoint, run by
# tini as PID 1). Its first argument names the process the container runs:
#
#   code-location   the Dagster code location, a gRPC server (DAGSTER_GRPC_HOST:DAGSTER_GRPC_PORT);
#                   the runs the daemon launches execute in this container
#   webserver       the Dagster UI (DAGSTER_WEBSERVER_HOST:DAGSTER_WEBSERVER_PORT); more arguments
#                   go to dagster-webserver, e.g. `webserver --read-only`
#   daemon          dagster-daemon: sensors, schedules and the run queue
#   api             the REST API (`latam api`, gunicorn; LATAM_API_HOST:LATAM_API_PORT)
#   exporter        the Prometheus exporter (`latam exporter`; LATAM_EXPORTER_HOST:LATAM_EXPORTER_PORT)
#   ui-proxy        nginx in front of the two webservers (`latam ui-proxy-config`, then nginx;
#                   LATAM_UI_PORT, LATAM_UI_ANALYST_UPSTREAM, LATAM_UI_OPERATOR_UPSTREAM)
#
# Anything else is a command on the PATH (`bash`, `dagster ...`) or else a `latam` command:
# `migrate`, `api-key create --name ...`, `ui-user add ...`, `run-once`, `simulate ...`.
# The webserver and the daemon find the code location through /app/infra/images/workspace.yaml
# (LATAM_CODE_LOCATION_HOST:LATAM_CODE_LOCATION_PORT).
set -eu

WORKSPACE=/app/infra/images/workspace.yaml

# Dagster's instance (dagster.yaml) reads LATAM_DAGSTER_PG_URL itself. As the `latam` commands
# do, take it from the file LATAM_DAGSTER_PG_URL_FILE names (a mounted secret), and in the
# postgresql+psycopg2:// form dagster-postgres needs (a plain postgresql:// URL would pick a
# driver that is not installed).
if [ -z "${LATAM_DAGSTER_PG_URL:-}" ] && [ -n "${LATAM_DAGSTER_PG_URL_FILE:-}" ]; then
  LATAM_DAGSTER_PG_URL=$(cat "$LATAM_DAGSTER_PG_URL_FILE")
  unset LATAM_DAGSTER_PG_URL_FILE  # the settings refuse both set at once
fi
case ${LATAM_DAGSTER_PG_URL:-} in
  postgresql://*) LATAM_DAGSTER_PG_URL="postgresql+psycopg2://${LATAM_DAGSTER_PG_URL#postgresql://}" ;;
  postgres://*) LATAM_DAGSTER_PG_URL="postgresql+psycopg2://${LATAM_DAGSTER_PG_URL#postgres://}" ;;
esac
if [ -n "${LATAM_DAGSTER_PG_URL:-}" ]; then
  export LATAM_DAGSTER_PG_URL
fi

if [ $# -eq 0 ]; then
  exec latam --help
fi

role=$1
shift
case "$role" in
  code-location)
    exec dagster api grpc --module-name latam_dagster.definitions \
      --location-name latam_dagster.definitions \
      --host "${DAGSTER_GRPC_HOST}" --port "${DAGSTER_GRPC_PORT}" "$@"
    ;;
  webserver)
    exec dagster-webserver --workspace "$WORKSPACE" \
      --host "${DAGSTER_WEBSERVER_HOST}" --port "${DAGSTER_WEBSERVER_PORT}" "$@"
    ;;
  daemon)
    exec dagster-daemon run --workspace "$WORKSPACE" "$@"
    ;;
  api | exporter)
    exec latam "$role" "$@"
    ;;
  ui-proxy)
    state=${LATAM_UI_STATE_DIR:-/tmp/latam-ui-proxy}
    latam ui-proxy-config --port "${LATAM_UI_PORT}" \
      --analyst-upstream "${LATAM_UI_ANALYST_UPSTREAM:?set LATAM_UI_ANALYST_UPSTREAM (host:port of the read-only webserver)}" \
      --operator-upstream "${LATAM_UI_OPERATOR_UPSTREAM:?set LATAM_UI_OPERATOR_UPSTREAM (host:port of the full webserver)}" \
      --state-dir "$state" >&2
    exec nginx -e stderr -p "$state/" -c "$state/nginx.conf" "$@"
    ;;
esac

if command -v "$role" >/dev/null 2>&1; then
  exec "$role" "$@"
fi
exec latam "$role" "$@"
