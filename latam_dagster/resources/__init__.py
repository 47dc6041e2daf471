"""Dagster resources: RabbitMQ, the warehouse, and (later) Great Expectations."""

from latam_dagster.resources.rabbitmq import RabbitMQResource
from latam_dagster.resources.warehouse import WarehouseResource

__all__ = ["RabbitMQResource", "WarehouseResource"]
