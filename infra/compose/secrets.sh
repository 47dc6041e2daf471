#!/usr/bin/env bash
# Generate the secrets of the compose stack (infra/compose/compose.yaml) into
# infra/compose/secrets/ (git-ignored), once: an existing file is kept, so running it again only
# adds what is missing. Remove the folder to start over (the Postgres and RabbitMQ volumes keep
# the old passwords: `podman-compose down -v` drops them too).
#
#   - a private CA and server certificates for `postgres` and `rabbitmq` (TLS on both links:
#     with LATAM_ENV=production the platform refuses plaintext, docs/tls.md);
#   - random passwords for the Postgres roles (owner, latam_pipeline, latam_exporter,
#     latam_api_reader, dagster) and the RabbitMQ users, and the URLs built from them;
#   - the PII hash key, the API's cursor and session keys, Grafana's admin password;
#   - the UI proxy's users: an operator and an analyst with random passwords (printed once).
#
# The folder is 0700; the files in it are 0644 so that the containers' unprivileged users can
# read the bind-mounted files (compose bind-mounts file secrets with the host's permissions).
# Needs openssl and python3 (with bcrypt, from the project's .venv, for the UI users).
set -euo pipefail
cd "$(dirname "$0")"
DIR=${LATAM_COMPOSE_SECRETS:-secrets}
PYTHON=${PYTHON:-../../.venv/bin/python}
[[ -x $PYTHON ]] || PYTHON=python3
umask 077
mkdir -p "$DIR"
chmod 0700 "$DIR"

new() { [[ ! -s $DIR/$1 ]]; }
rand() { openssl rand -hex "${1:-24}"; }
put() { # put NAME VALUE: write a secret file unless it exists
  if new "$1"; then printf '%s\n' "$2" >"$DIR/$1"; fi
}
val() { tr -d '\n' <"$DIR/$1"; }

# --- TLS: a CA of the stack's own, server certificates naming the services ---------------------
if new ca.key; then
  openssl req -x509 -newkey rsa:3072 -sha256 -days 825 -nodes -subj "/CN=latam compose CA" \
    -keyout "$DIR/ca.key" -out "$DIR/tls_ca" 2>/dev/null
fi
for svc in postgres rabbitmq; do
  if new "${svc}_tls_key"; then
    openssl req -newkey rsa:3072 -sha256 -nodes -subj "/CN=${svc}" \
      -keyout "$DIR/${svc}_tls_key" -out "$DIR/${svc}.csr" 2>/dev/null
    printf 'subjectAltName=DNS:%s,DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' \
      "$svc" >"$DIR/${svc}.ext"
    openssl x509 -req -sha256 -days 825 -in "$DIR/${svc}.csr" -CA "$DIR/tls_ca" \
      -CAkey "$DIR/ca.key" -CAcreateserial -extfile "$DIR/${svc}.ext" \
      -out "$DIR/${svc}_tls_cert" 2>/dev/null
    rm -f "$DIR/${svc}.csr" "$DIR/${svc}.ext"
  fi
done

# --- Postgres: one password per role, one URL per process ----------------------------------------
for role in superuser owner pipeline exporter api dagster; do
  put "pg_${role}_password" "$(rand)"
done
tls="sslmode=verify-full&sslrootcert=/run/secrets/tls_ca"
pg() { printf 'postgresql://%s:%s@postgres:5432/%s?%s' "$1" "$(val "pg_$2_password")" "$3" "$tls"; }
put warehouse_url "$(pg latam_owner owner latam)"
put pipeline_database_url "$(pg latam_pipeline pipeline latam)"
put exporter_database_url "$(pg latam_exporter exporter latam)"
put api_database_url "$(pg latam_api_reader api latam)"
put dagster_pg_url "$(pg dagster dagster latam_dagster)"

# --- RabbitMQ: the platform's user (vhost latam) and a monitoring user for the exporter ---------
put rabbitmq_latam_password "$(rand)"
put rabbitmq_monitor_password "$(rand)"
put amqp_url "amqps://latam:$(val rabbitmq_latam_password)@rabbitmq:5671/latam"
put rabbitmq_management_url "https://latam_monitor:$(val rabbitmq_monitor_password)@rabbitmq:15671"
if new rabbitmq_definitions; then
  LATAM_PW=$(val rabbitmq_latam_password) MONITOR_PW=$(val rabbitmq_monitor_password) \
    "$PYTHON" - >"$DIR/rabbitmq_definitions" <<'EOF'
import base64, hashlib, json, os

def rabbit_hash(password: str) -> str:
    """RabbitMQ's rabbit_password_hashing_sha256: base64(salt + sha256(salt + password))."""
    salt = os.urandom(4)
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()

users = [("latam", os.environ["LATAM_PW"], ""), ("latam_monitor", os.environ["MONITOR_PW"], "monitoring")]
print(json.dumps({
    "users": [
        {"name": n, "password_hash": rabbit_hash(p), "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": [t] if t else []}
        for n, p, t in users
    ],
    "vhosts": [{"name": "latam"}],
    "permissions": [
        {"user": "latam", "vhost": "latam", "configure": ".*", "write": ".*", "read": ".*"},
        {"user": "latam_monitor", "vhost": "latam", "configure": "^$", "write": "^$", "read": "^$"},
    ],
}, indent=2))
EOF
fi

# --- application keys ----------------------------------------------------------------------------
put pii_hash_key "$(rand 32)"
put api_cursor_secret "$(rand 32)"
put api_session_secret "$(rand 32)"
put grafana_admin_password "$(rand 16)"

# --- the UI proxy's users (bcrypt, written by `latam ui-user`'s own code) ------------------------
if new ui_roles_map; then
  auth=$(mktemp -d)
  operator_pw=$(rand 12)
  analyst_pw=$(rand 12)
  OPERATOR_PW=$operator_pw ANALYST_PW=$analyst_pw AUTH=$auth "$PYTHON" - <<'EOF'
import os
from latam_dagster.uiproxy.users import UserStore

store = UserStore(os.environ["AUTH"])
store.add("operator", "operator", os.environ["OPERATOR_PW"])
store.add("analyst", "analyst", os.environ["ANALYST_PW"])
EOF
  cp "$auth/analyst.htpasswd" "$DIR/ui_analyst_htpasswd"
  cp "$auth/operator.htpasswd" "$DIR/ui_operator_htpasswd"
  cp "$auth/roles.map" "$DIR/ui_roles_map"
  rm -rf "$auth"
  echo "UI logins (shown once): operator ${operator_pw}  analyst ${analyst_pw}"
fi

chmod 0644 "$DIR"/*
chmod 0600 "$DIR/ca.key" # signs nothing at run time: no container mounts it
echo "secrets in $(pwd)/$DIR"
