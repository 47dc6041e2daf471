"""Time-based automation: recent mart partitions for late data, weekly reference data.

Late events keep arriving for the last day or two; the mart partitions sensor already refreshes the
dates they touch, and this schedule is the safety net that recomputes today and yesterday in one
run every hour whatever happened. Reference data (airports) is driven by declarative automation:
loaded when missing, refreshed weekly. Once a day the instance retention job deletes the Dagster
runs past their retention window, so the instance's own database stays bounded.
"""

from datetime import timedelta

from dagster import (
    AssetSelection,
    AutomationConditionSensorDefinition,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SkipReason,
    schedule,
)

from latam_dagster.assets.reference import REFERENCE_GROUP
from latam_dagster.instance_retention import instance_retention_job
from latam_dagster.jobs import TRIGGER_TAG, marts_job
from latam_dagster.sensors.mart_sensors import partition_bounds, range_tags

MARTS_RECENT_CRON = "5 * * * *"
# once a day, at a quiet hour and away from the marts schedule's minute
INSTANCE_RETENTION_CRON = "17 3 * * *"


@schedule(
    name="marts_recent_days_schedule",
    cron_schedule=MARTS_RECENT_CRON,
    job=marts_job,
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Every hour: recompute the marts for yesterday and today (UTC) in one run.",
)
def marts_recent_days_schedule(context: ScheduleEvaluationContext):
    today = context.scheduled_execution_time.date()
    first, _last = partition_bounds()
    start = max(today - timedelta(days=1), first)
    if start > today:
        return SkipReason(f"partitions start on {first}")
    return RunRequest(
        run_key=f"recent:{context.scheduled_execution_time.isoformat()}",
        tags={**range_tags(start, today), TRIGGER_TAG: "schedule"},
    )


reference_automation_sensor = AutomationConditionSensorDefinition(
    "reference_automation_sensor",
    target=AssetSelection.groups(REFERENCE_GROUP),
    default_status=DefaultSensorStatus.RUNNING,
    description="Loads curated.dim_airport when missing and refreshes it weekly.",
)


instance_retention_schedule = ScheduleDefinition(
    name="instance_retention_schedule",
    cron_schedule=INSTANCE_RETENTION_CRON,
    job=instance_retention_job,
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
    description=(
        "Every day at 03:17 UTC: delete the runs past LATAM_RUN_RETENTION_SUCCESS_DAYS / "
        "LATAM_RUN_RETENTION_FAILURE_DAYS, with their event logs."
    ),
)
