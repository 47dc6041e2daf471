"""The queue sensor: requests one drain run for all the queues where messages wait.

The sensor only looks (one passive declare per queue) and requests a run; the run does the
work. One run drains all the queues with traffic at once and then updates the curated tables
they feed: on two cores each Dagster run costs seconds of CPU to start, so a run per queue per
micro-batch would spend more on start-ups than on events. It keeps LATAM_DRAIN_RUNS drain runs
(default 3) draining or about to: each queue's drain takes the queue's lock in Postgres, so the
next runs are ones that have already paid their start-up (process, code, resources) and wait on
the lock, and one of them drains the moment the current drain ends. Runs that have drained and
still update their curated tables or run their checks do not count; the `latam/drain_queues`
tag limit in dagster.yaml bounds all drain runs together. Each request carries a run key, so a
tick evaluated twice does not launch two runs.

Every batch a drain run writes to an audited curated table is audited before it is published
(the asset's own checks, always selected). The Great Expectations checks of whole tables are the
expensive part of a small run (loading GX alone costs seconds of CPU), so a drain run includes
them only when they are due: never evaluated, last evaluated more than
LATAM_DRAIN_CHECK_INTERVAL_SECONDS ago, or last failed. Marts runs always validate their inputs
first.
"""

import time
from collections.abc import Sequence

from dagster import (
    AssetCheckKey,
    AssetKey,
    AssetSelection,
    DagsterEventType,
    DagsterRunStatus,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SkipReason,
)

from latam_dagster.assets.raw import drain_queues, raw_asset_key
from latam_dagster.ingest.drain import BUDGET_STOPS
from latam_dagster.ingest.topology import QUEUES, BrokerUnavailable
from latam_dagster.jobs import DRAIN_JOB_NAME, DRAIN_TAG, drain_tag_value
from latam_dagster.quality.audit_checks import all_audit_check_keys
from latam_dagster.resources import RabbitMQResource
from latam_dagster.sensors.running import running_sensor
from latam_dagster.settings import get_settings

CHECKS_TAG = "latam/checks"
DRAIN_STEP = drain_queues.node_def.name
STEP_ENDS = {DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE}
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


def drains_ahead(context: SensorEvaluationContext) -> int:
    """Drain runs queued or running whose drain step has not ended: the one draining now and the
    ones started up (or starting) to take over from it.

    A run that has drained but still updates its curated tables or runs its checks does not
    count: it no longer stands between an event in the queue and the next drain.
    """
    runs = context.instance.get_run_records(
        RunsFilter(job_name=DRAIN_JOB_NAME, statuses=ACTIVE_STATUSES)
    )
    ahead = 0
    for record in runs:
        ended = context.instance.get_records_for_run(
            record.dagster_run.run_id, of_type=STEP_ENDS
        ).records
        if not any(r.event_log_entry.step_key == DRAIN_STEP for r in ended):
            ahead += 1
    return ahead


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


def drain_selection(
    context: SensorEvaluationContext, families: Sequence[str]
) -> tuple[list[AssetKey], list[AssetCheckKey]] | None:
    """The raw assets of `families`, the curated tables they feed in the drain job, and the
    checks of all of them; None when the sensor runs outside its code location."""
    repository = context.repository_def
    if repository is None:
        return None
    layer = repository.get_job(DRAIN_JOB_NAME).asset_layer
    graph = layer.asset_graph
    raw = AssetSelection.assets(*(raw_asset_key(f) for f in families))
    assets = raw.downstream().resolve(graph) & set(layer.selected_asset_keys)
    checks = [k for k in graph.asset_check_keys if k.asset_key in assets]
    return sorted(assets), sorted(checks)


@running_sensor(get_settings().sensor_interval_seconds, job_name=DRAIN_JOB_NAME)
def queue_sensor(context: SensorEvaluationContext, rabbitmq: RabbitMQResource):
    """Requests a drain run of the queues where messages wait or traffic is steady."""
    try:
        depths = rabbitmq.depths()
    except BrokerUnavailable as exc:
        return SkipReason(str(exc))
    topo = rabbitmq.topology
    settings = get_settings()
    waiting = ", ".join(f"{topo.queue(f)} {depths[topo.queue(f)]}" for f in QUEUES)
    active = drains_ahead(context)
    limit = max(1, settings.drain_runs)
    if active >= limit:
        return SkipReason(
            f"{active} drain run(s) already draining or about to, the most allowed "
            f"(LATAM_DRAIN_RUNS={limit}); waiting: {waiting}"
        )
    min_depth = max(settings.sensor_min_depth, 1)
    families = [f for f in QUEUES if depths[topo.queue(f)] >= min_depth]
    steady = [f for f in QUEUES if f not in families and active and steady_traffic(context, f)]
    if not families and not steady:
        return SkipReason(f"no queue to drain; waiting: {waiting}")
    drained = [f for f in QUEUES if f in families or f in steady]
    reason = ", ".join(
        [*(f"{f}: messages waiting" for f in families), *(f"{f}: steady traffic" for f in steady)]
    )
    tags = {
        DRAIN_TAG: drain_tag_value(drained),
        "latam/queue_depth": ",".join(f"{f}={depths[topo.queue(f)]}" for f in drained),
        "latam/reason": reason,
    }
    run_key = f"{topo.prefix}:{drain_tag_value(drained)}:{int(time.time())}"
    selection = drain_selection(context, drained)
    if selection is None:  # no code location (a bare sensor call): the raw assets only
        return RunRequest(
            run_key=run_key, tags=tags, asset_selection=[raw_asset_key(f) for f in drained]
        )
    assets, checks = selection
    # the audit of each batch is part of the curated asset itself: always selected
    audit = all_audit_check_keys()
    always = [k for k in checks if k in audit]
    gx_checks = [k for k in checks if k not in audit]
    due = checks_due(context, gx_checks, settings.drain_check_interval_seconds)
    tags[CHECKS_TAG] = "yes" if due else "not due"
    return RunRequest(
        run_key=run_key,
        tags=tags,
        asset_selection=assets,
        asset_check_keys=[*always, *(gx_checks if due else [])],
    )


queue_sensors = [queue_sensor]
