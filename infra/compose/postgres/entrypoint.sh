#!/bin/sh
# Entry point of the compose stack's Postgres: copy the TLS key from its secret file to a file the
# server accepts (owned by postgres, mode 0600; a bind-mounted secret keeps the host's owner), then
# hand over to the image's own entry point with TLS on and the stack's pg_hba.conf.
set -eu
install -d -o postgres -g postgres -m 0700 /var/lib/postgresql/tls
install -o postgres -g postgres -m 0600 /run/secrets/postgres_tls_key /var/lib/postgresql/tls/server.key
install -o postgres -g postgres -m 0644 /run/secrets/postgres_tls_cert /var/lib/postgresql/tls/server.crt
exec docker-entrypoint.sh postgres \
  -c ssl=on \
  -c ssl_cert_file=/var/lib/postgresql/tls/server.crt \
  -c ssl_key_file=/var/lib/postgresql/tls/server.key \
  -c ssl_min_protocol_version=TLSv1.2 \
  -c hba_file=/etc/latam/pg_hba.conf \
  -c password_encryption=scram-sha-256 \
  -c log_connections=on
