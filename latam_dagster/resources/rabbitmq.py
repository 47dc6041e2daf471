"""RabbitMQ as a Dagster resource: connection URL plus the topology names."""

from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import Field

from latam_dagster.ingest.topology import Topology, declare_topology, queue_depths
from latam_dagster.settings import get_settings


class RabbitMQResource(ConfigurableResource):
    """`amqp_url` defaults to LATAM_AMQP_URL, `prefix` to LATAM_TOPOLOGY_PREFIX."""

    amqp_url: str = Field(default_factory=lambda: get_settings().amqp_url)
    prefix: str = Field(default_factory=lambda: get_settings().topology_prefix)
    delivery_limit: int = Field(default_factory=lambda: get_settings().delivery_limit)

    @property
    def topology(self) -> Topology:
        return Topology(prefix=self.prefix, delivery_limit=self.delivery_limit)

    def declare(self) -> None:
        """Declare the exchange, queues, bindings and DLX (idempotent)."""
        declare_topology(self.amqp_url, self.topology)

    def depths(self) -> dict[str, int]:
        """Ready messages per drainable queue."""
        return queue_depths(self.amqp_url, self.topology)
