"""The Dagster code location: assembles assets, checks, jobs, sensors and resources."""

from dagster import Definitions, in_process_executor

from latam_dagster.assets.curated import curated_assets
from latam_dagster.assets.marts import mart_assets
from latam_dagster.assets.raw import raw_assets
from latam_dagster.assets.reference import reference_assets
from latam_dagster.jobs import curated_full_refresh_job, drain_job, marts_job, pipeline_job
from latam_dagster.quality.gx_checks import asset_checks
from latam_dagster.quality.gx_resource import GreatExpectationsResource
from latam_dagster.resources import RabbitMQResource, WarehouseResource
from latam_dagster.schedules import marts_recent_days_schedule, reference_automation_sensor
from latam_dagster.sensors.mart_sensors import mart_partitions_sensor
from latam_dagster.sensors.queue_sensors import queue_sensors

defs = Definitions(
    assets=[*raw_assets, *reference_assets, *curated_assets, *mart_assets],
    asset_checks=[*asset_checks],
    jobs=[drain_job, pipeline_job, marts_job, curated_full_refresh_job],
    sensors=[*queue_sensors, mart_partitions_sensor, reference_automation_sensor],
    schedules=[marts_recent_days_schedule],
    resources={
        "rabbitmq": RabbitMQResource(),
        "warehouse": WarehouseResource(),
        "gx": GreatExpectationsResource(),
    },
    # runs started by automation or a UI backfill are small SQL steps too: spawning a process per
    # step would cost more than the steps on two cores
    executor=in_process_executor,
)
