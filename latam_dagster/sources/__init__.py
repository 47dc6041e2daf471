"""The source systems allowed to publish: the registry and their RabbitMQ users."""
