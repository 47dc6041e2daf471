"""The mart partitions sensor: refresh the daily marts for the flight dates that changed.

Curated updates record the flight dates they touched; this sensor only reads that list (one small
query) and requests marts runs, one per contiguous range of pending dates, each recomputing only the
pending dates of its range. Dates outside the partitions (before LATAM_PARTITION_START, or in the
future) stay pending until a partition exists for them; every tick says so in its log (and in its
skip reason when it requests nothing), naming the setting to change for the old ones.
"""

import time
from datetime import date

import psycopg2
from dagster import (
    DagsterRunStatus,
    RunConfig,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SkipReason,
)

from latam_dagster.assets.marts import MartConfig, daily_partitions, mart_key
from latam_dagster.db import WarehouseUnavailable
from latam_dagster.jobs import TRIGGER_TAG, marts_job
from latam_dagster.resources import WarehouseResource
from latam_dagster.sensors.running import running_sensor
from latam_dagster.settings import get_settings
from latam_dagster.transform.marts import (
    MARTS,
    DatesOutside,
    date_ranges,
    dates_outside,
    pending_dates_at,
    split_in_bounds,
)

# Run tags that make one run cover a range of partitions (how single-run backfills are launched).
ASSET_PARTITION_RANGE_START_TAG = "dagster/asset_partition_range_start"
ASSET_PARTITION_RANGE_END_TAG = "dagster/asset_partition_range_end"
PENDING_TRIGGER = "pending-partitions"
FAILURE_BACKOFF_SECONDS = 60
ACTIVE_STATUSES = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
]


def partition_bounds() -> tuple[date, date]:
    """First and last flight date that has a partition now."""
    first = daily_partitions.get_first_partition_key()
    last = daily_partitions.get_last_partition_key()
    return date.fromisoformat(first), date.fromisoformat(last)


def only_pending_config() -> RunConfig:
    return RunConfig(
        ops={mart_key(m).to_python_identifier(): MartConfig(only_pending=True) for m in MARTS}
    )


def range_tags(start: date, end: date) -> dict[str, str]:
    """Run tags that make a run cover the partitions start..end."""
    return {
        ASSET_PARTITION_RANGE_START_TAG: start.isoformat(),
        ASSET_PARTITION_RANGE_END_TAG: end.isoformat(),
    }


def pending_run_requests(
    pending: dict[date, int], bounds: tuple[date, date]
) -> tuple[list[RunRequest], list[date]]:
    """Run requests for the pending dates within bounds, and the dates left outside."""
    inside, outside = split_in_bounds(pending, *bounds)
    requests = []
    for start, end in date_ranges(inside):
        seq = max(pending[d] for d in inside if start <= d <= end)
        requests.append(
            RunRequest(
                run_key=f"marts:{start}..{end}:{seq}:{int(time.time())}",
                run_config=only_pending_config(),
                tags={**range_tags(start, end), TRIGGER_TAG: PENDING_TRIGGER},
            )
        )
    return requests, outside


@running_sensor(get_settings().mart_sensor_interval_seconds, job=marts_job)
def mart_partitions_sensor(context: SensorEvaluationContext, warehouse: WarehouseResource):
    """Refreshes the daily mart partitions whose flights changed since their last run."""
    try:
        pending = pending_dates_at(warehouse.url)
    except (WarehouseUnavailable, psycopg2.Error) as exc:
        return SkipReason(f"warehouse not readable: {str(exc).strip()}")
    if not pending:
        return SkipReason("every mart partition is up to date")
    bounds = partition_bounds()
    outside = report_dates_outside(context, pending, bounds)
    notes = "".join(f"; {m}" for m in outside.messages())
    inside = len(pending) - len(outside.before) - len(outside.after)
    runs = context.instance.get_runs(
        RunsFilter(job_name=marts_job.name, tags={TRIGGER_TAG: PENDING_TRIGGER}), limit=1
    )
    if inside and runs and runs[0].status in ACTIVE_STATUSES:
        return SkipReason(f"{inside} pending date(s); a marts run is already in progress{notes}")
    if inside and runs and runs[0].status == DagsterRunStatus.FAILURE:
        stats = context.instance.get_run_stats(runs[0].run_id)
        if stats.end_time and time.time() - stats.end_time < FAILURE_BACKOFF_SECONDS:
            return SkipReason(
                f"last marts run failed; retrying after {FAILURE_BACKOFF_SECONDS}s{notes}"
            )
    requests, _outside = pending_run_requests(pending, bounds)
    if not requests:
        return SkipReason("no pending date within the partitions" + notes)
    return requests


def report_dates_outside(
    context: SensorEvaluationContext, pending: dict[date, int], bounds: tuple[date, date]
) -> DatesOutside:
    """Log the pending dates no partition covers, in the tick's log (the UI shows it with the tick).

    A skip reason cannot travel with run requests, so the log is what carries the news on a tick
    that also requests runs; dates before the start need a person, future ones only time.
    """
    outside = dates_outside(pending, *bounds)
    if message := outside.before_message():
        context.log.warning(message)
    if message := outside.after_message():
        context.log.info(message)
    return outside
