"""Queue sensors: one per queue, requesting a drain run when messages wait.

A sensor only looks (one passive queue declare) and requests a run; the run does the work. It
skips while a drain of the same queue is queued or running, and each request carries a run key,
so a sensor tick that is evaluated twice does not launch two runs.
"""

import time

from dagster import (
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorDefinition,
    SensorEvaluationContext,
    SkipReason,
    sensor,
)

from latam_dagster.ingest.topology import QUEUES, BrokerUnavailable
from latam_dagster.jobs import DRAIN_TAG, drain_job_name, drain_jobs
from latam_dagster.resources import RabbitMQResource
from latam_dagster.settings import get_settings

ACTIVE_STATUSES = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
]


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
        min_depth = get_settings().sensor_min_depth
        if depth < max(min_depth, 1):
            return SkipReason(f"{queue}: {depth} message(s) waiting")
        active = context.instance.get_runs_count(
            RunsFilter(job_name=job.name, statuses=ACTIVE_STATUSES)
        )
        if active:
            return SkipReason(f"{queue}: a drain is already queued or running ({depth} waiting)")
        return RunRequest(
            run_key=f"{queue}:{int(time.time())}",
            tags={DRAIN_TAG: family, "latam/queue_depth": str(depth)},
        )

    return _sensor


queue_sensors = [build_queue_sensor(f) for f in QUEUES]
