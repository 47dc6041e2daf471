"""Queue sensors: one per queue, requesting a drain run when messages wait.

A sensor only looks (one passive queue declare) and requests a run; the run does the work. It
keeps at most LATAM_DRAIN_RUNS_PER_QUEUE drain runs of its queue queued or running (default 3):
the drain steps themselves take turns through the queue's pool (limit 1), so the next run is
one that has already paid its start-up (process, code, resources) and drains the moment the
current one's drain ends, while an earlier one may still run its curated updates and checks. Each request carries
a run key, so a sensor tick that is evaluated twice does not launch two runs.

Data-quality checks are the expensive part of a small run (loading Great Expectations alone
costs seconds of CPU), so a drain run includes the checks of its tables only when they are due:
never evaluated, last evaluated more than LATAM_DRAIN_CHECK_INTERVAL_SECONDS ago, or last
failed. Each evaluation covers the whole table, so nothing written in between goes unchecked for
longer than the interval, and after a failure every run checks (and blocks) until the data is
fixed. Marts runs always check their inputs first.
"""

import time
from collections.abc import Sequence

from dagster import (
    AssetCheckKey,
    AssetKey,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorDefinition,
    SensorEvaluationContext,
    SkipReason,
    sensor,
)

from latam_dagster.assets.raw import raw_asset_key
from latam_dagster.ingest.drain import BUDGET_STOPS
from latam_dagster.ingest.topology import QUEUES, BrokerUnavailable
from latam_dagster.jobs import DRAIN_TAG, drain_job_name, drain_jobs
from latam_dagster.resources import RabbitMQResource
from latam_dagster.settings import get_settings

CHECKS_TAG = "latam/checks"
ACTIVE_STATUSES = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
]


def checks_due(
    context: SensorEvaluationContext, check_keys: Sequence[AssetCheckKey], interval: float
) -> bool:
    """Whether a drain run should evaluate its tables' checks (see the module docstring)."""
    if interval <= 0 or not check_keys:
        return True
    latest = context.instance.event_log_storage.get_latest_asset_check_execution_by_key(
        list(check_keys)
    )
    now = time.time()
    for key in check_keys:
        record = latest.get(key)
        if record is None or record.status.value == "FAILED":
            return True
        if now - record.create_timestamp >= interval:
            return True
    return False


def _job_selection(
    context: SensorEvaluationContext, job_name: str
) -> tuple[list[AssetKey], list[AssetCheckKey]] | None:
    """The drain job's assets and checks, when the sensor runs inside its code location."""
    repository = context.repository_def
    if repository is None:
        return None
    layer = repository.get_job(job_name).asset_layer
    return sorted(layer.selected_asset_keys), sorted(layer.asset_graph.asset_check_keys)


def steady_traffic(context: SensorEvaluationContext, family: str) -> bool:
    """Whether the last drain of this queue stopped on its budget rather than on an empty queue.

    While a drain consumes, the queue shows no ready messages however busy it is; a drain that
    spent its whole budget says traffic is steady, so the next run should be starting up now.
    A drain that found the queue empty ends the chain.
    """
    event = context.instance.get_latest_materialization_event(raw_asset_key(family))
    if event is None or event.asset_materialization is None:
        return False
    stop = event.asset_materialization.metadata.get("stop_reason")
    return stop is not None and stop.value in BUDGET_STOPS


def build_queue_sensor(family: str) -> SensorDefinition:
    job = next(j for j in drain_jobs if j.name == drain_job_name(family))
    settings = get_settings()

    @sensor(
        name=f"{family}_queue_sensor",
        job=job,
        minimum_interval_seconds=settings.sensor_interval_seconds,
        default_status=DefaultSensorStatus.RUNNING,
        description=f"Requests a drain of the {family} queue when messages are waiting.",
    )
    def _sensor(context: SensorEvaluationContext, rabbitmq: RabbitMQResource):
        queue = rabbitmq.topology.queue(family)
        try:
            depth = rabbitmq.depths()[queue]
        except BrokerUnavailable as exc:
            return SkipReason(str(exc))
        settings = get_settings()
        active = context.instance.get_runs_count(
            RunsFilter(job_name=job.name, statuses=ACTIVE_STATUSES)
        )
        limit = max(1, settings.drain_runs_per_queue)
        if active >= limit:
            return SkipReason(
                f"{queue}: {active} drain run(s) already queued or running, the most allowed "
                f"(LATAM_DRAIN_RUNS_PER_QUEUE={limit}); {depth} waiting"
            )
        if depth >= max(settings.sensor_min_depth, 1):
            reason = "messages waiting"
        elif active and steady_traffic(context, family):
            reason = "steady traffic: the next drain starts up while this one drains"
        else:
            return SkipReason(f"{queue}: {depth} message(s) waiting")
        tags = {DRAIN_TAG: family, "latam/queue_depth": str(depth), "latam/reason": reason}
        selection = _job_selection(context, job.name)
        if selection is None:  # no code location (a bare sensor call): the job as defined
            return RunRequest(run_key=f"{queue}:{int(time.time())}", tags=tags)
        assets, checks = selection
        due = checks_due(context, checks, settings.drain_check_interval_seconds)
        tags[CHECKS_TAG] = "yes" if due else "not due"
        return RunRequest(
            run_key=f"{queue}:{int(time.time())}",
            tags=tags,
            asset_selection=assets,
            asset_check_keys=checks if due else [],
        )

    return _sensor


queue_sensors = [build_queue_sensor(f) for f in QUEUES]
