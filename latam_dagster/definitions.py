"""The Dagster code location: assembles assets, checks, jobs, sensors and resources."""

from dagster import Definitions

from latam_dagster.assets.raw import raw_assets
from latam_dagster.jobs import drain_jobs, pipeline_job
from latam_dagster.resources import RabbitMQResource, WarehouseResource
from latam_dagster.sensors.queue_sensors import queue_sensors

defs = Definitions(
    assets=[*raw_assets],
    jobs=[*drain_jobs, pipeline_job],
    sensors=[*queue_sensors],
    resources={
        "rabbitmq": RabbitMQResource(),
        "warehouse": WarehouseResource(),
    },
)
