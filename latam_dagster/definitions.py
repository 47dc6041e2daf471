"""The Dagster code location: assembles assets, checks, jobs, sensors and resources.

With LATAM_ENV=production the code location refuses to load (one line on stderr, exit status 2)
while a secret the runs need is missing or a default: the PII hash key, the broker's credentials,
the pipeline role's database password, the Dagster database's password. Every run loads the code
location first, so no run starts with them either. The check comes before Dagster and the assets
are imported, so the line is the only one the process writes.
"""

import sys

from latam_dagster.settings import (
    PIPELINE_SECRETS,
    SettingsProblem,
    get_settings,
    refuse_default_secrets,
)


def refuse_default_secrets_or_exit() -> None:
    """Exit with status 2 and one line on stderr on a setting the code location cannot use."""
    try:
        settings = get_settings()
        refuse_default_secrets(settings.default_secrets(*PIPELINE_SECRETS), settings)
    except SettingsProblem as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def build_definitions():
    from dagster import Definitions, fs_io_manager, in_process_executor

    from latam_dagster.assets.curated import curated_assets
    from latam_dagster.assets.marts import mart_assets
    from latam_dagster.assets.raw import raw_assets
    from latam_dagster.assets.reference import reference_assets
    from latam_dagster.instance_retention import instance_retention_job
    from latam_dagster.jobs import curated_full_refresh_job, drain_job, marts_job, pipeline_job
    from latam_dagster.quality.gx_checks import asset_checks
    from latam_dagster.quality.gx_resource import GreatExpectationsResource
    from latam_dagster.resources import RabbitMQResource, WarehouseResource
    from latam_dagster.resources.fixed import fixed_resources
    from latam_dagster.schedules import (
        instance_retention_schedule,
        marts_recent_days_schedule,
        reference_automation_sensor,
    )
    from latam_dagster.sensors.mart_sensors import mart_partitions_sensor
    from latam_dagster.sensors.queue_sensors import queue_sensors

    return Definitions(
        assets=[*raw_assets, *reference_assets, *curated_assets, *mart_assets],
        asset_checks=[*asset_checks],
        jobs=[
            drain_job,
            pipeline_job,
            marts_job,
            curated_full_refresh_job,
            instance_retention_job,
        ],
        sensors=[*queue_sensors, mart_partitions_sensor, reference_automation_sensor],
        schedules=[marts_recent_days_schedule, instance_retention_schedule],
        # values from the environment only: a run config that names another database, broker or
        # directory is refused at launch (latam_dagster/resources/fixed.py, docs/ui-access.md)
        resources=fixed_resources(
            {
                "rabbitmq": RabbitMQResource(),
                "warehouse": WarehouseResource(),
                "gx": GreatExpectationsResource(),
                # Dagster's default IO manager, whose `base_dir` would otherwise be run config
                "io_manager": fs_io_manager,
            }
        ),
        # runs started by automation or a UI backfill are small SQL steps too: spawning a process
        # per step would cost more than the steps on two cores
        executor=in_process_executor,
    )


refuse_default_secrets_or_exit()
defs = build_definitions()
