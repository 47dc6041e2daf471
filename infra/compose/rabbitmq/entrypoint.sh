#!/bin/sh
# Entry point of the compose stack's RabbitMQ: copy the TLS files from their secrets to files the
# `rabbitmq` user can read (a bind-mounted secret keeps the host's owner), then run the image's
# own entry point.
set -eu
install -d -o rabbitmq -g rabbitmq -m 0700 /etc/rabbitmq/tls
install -o rabbitmq -g rabbitmq -m 0400 /run/secrets/rabbitmq_tls_key /etc/rabbitmq/tls/server.key
install -o rabbitmq -g rabbitmq -m 0444 /run/secrets/rabbitmq_tls_cert /etc/rabbitmq/tls/server.crt
install -o rabbitmq -g rabbitmq -m 0444 /run/secrets/tls_ca /etc/rabbitmq/tls/ca.crt
exec docker-entrypoint.sh rabbitmq-server
