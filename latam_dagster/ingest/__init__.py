"""Getting events from RabbitMQ into raw Postgres: topology, publishing, the drain."""
