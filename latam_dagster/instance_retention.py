"""Run retention: the Dagster instance's own database stays bounded.

The queue sensor launches a drain run every few seconds, thousands a day, and each leaves its run
row, its tags, tens of event-log rows and an asset check execution per check it evaluated in the
instance's Postgres database; nothing in Dagster deletes them. `purge_old_runs` deletes finished
runs once they are past their window, through Dagster's public API (`delete_run` takes the run's
event log with it): successful runs after LATAM_RUN_RETENTION_SUCCESS_DAYS, failed and canceled
ones after the longer LATAM_RUN_RETENTION_FAILURE_DAYS, since those are the ones someone
investigates. A run that has not finished (queued, starting, started, canceling) is never
deleted, however old. The `instance_retention` job runs it once a day
(`instance_retention_schedule`). Schedule and sensor ticks have their own retention, in
dagster.yaml (`retention:`).

`delete_run` leaves the run's asset check executions behind (about 17 rows, 30 KiB, per drain
run: most of what would still grow), and no Dagster API deletes them per run, so
`delete_check_executions` does it on the event log storage's own connection, one statement per
check and batch of runs, through Dagster's unique index on (asset_key, check_name, run_id). It names Dagster's table and columns: a Dagster upgrade that changes
them fails the job (and tests/integration/test_instance_retention.py), it does not pass
silently.

What stays: the assets' latest state (asset keys, last materialization, partition status cache)
and the runs' compute logs (files, not the database).
"""

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from dagster import (
    DagsterInstance,
    DagsterRunStatus,
    OpExecutionContext,
    RunsFilter,
    in_process_executor,
    job,
    op,
)

from latam_dagster.settings import get_settings

INSTANCE_RETENTION_JOB_NAME = "instance_retention"
# runs looked up (and deleted) per query: a first purge of a long history stays in small steps
DEFAULT_BATCH = 500
SUCCESS_STATUSES = (DagsterRunStatus.SUCCESS,)
FAILURE_STATUSES = (DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED)
CHECK_EXECUTIONS = sa.table(
    "asset_check_executions", sa.column("asset_key"), sa.column("check_name"), sa.column("run_id")
)


@dataclass
class Purged:
    """What a purge deleted: runs per status (`SUCCESS`, `FAILURE`, `CANCELED`) and the asset
    check executions of those runs."""

    runs: dict[str, int] = field(
        default_factory=lambda: {s.value: 0 for s in (*SUCCESS_STATUSES, *FAILURE_STATUSES)}
    )
    check_executions: int = 0


def recorded_checks(instance: DagsterInstance) -> list[tuple[str, str]]:
    """The (asset key, check name) pairs with executions in the instance: a few dozen, read once
    a purge so that each delete below goes through Dagster's unique index, which starts with
    them (no index starts with run_id)."""
    connect = getattr(instance.event_log_storage, "index_connection", None)
    if connect is None:
        return []
    query = sa.select(CHECK_EXECUTIONS.c.asset_key, CHECK_EXECUTIONS.c.check_name).distinct()
    with connect() as conn:
        return [(key, name) for key, name in conn.execute(query)]


def delete_check_executions(
    instance: DagsterInstance, run_ids: Collection[str], checks: Iterable[tuple[str, str]]
) -> int:
    """Delete the executions of `checks` (`recorded_checks`) by `run_ids`; returns the rows
    deleted (0 on an instance whose event log is not in SQL)."""
    connect = getattr(instance.event_log_storage, "index_connection", None)
    if connect is None or not run_ids:
        return 0
    deleted = 0
    with connect() as conn, conn.begin():
        for key, name in checks:
            result = conn.execute(
                CHECK_EXECUTIONS.delete().where(
                    CHECK_EXECUTIONS.c.asset_key == key,
                    CHECK_EXECUTIONS.c.check_name == name,
                    CHECK_EXECUTIONS.c.run_id.in_(list(run_ids)),
                )
            )
            deleted += result.rowcount
    return deleted


def purge_old_runs(
    instance: DagsterInstance,
    now: datetime,
    success_days: float,
    failure_days: float,
    batch: int = DEFAULT_BATCH,
) -> Purged:
    """Delete the successful runs last updated more than `success_days` before `now`, and the
    failed and canceled ones after `failure_days`, with their event logs and their asset check
    executions, oldest first, `batch` runs per query.

    A window of 0 (or less) keeps those runs for ever. `now` is injected so a caller (or a test)
    decides what "old" means; it must carry a time zone, since the instance compares UTC times.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if batch < 1:
        raise ValueError("batch must be at least 1")
    now = now.astimezone(UTC)
    purged = Purged()
    checks = recorded_checks(instance)
    for statuses, days in ((SUCCESS_STATUSES, success_days), (FAILURE_STATUSES, failure_days)):
        if days <= 0:
            continue
        old = RunsFilter(statuses=list(statuses), updated_before=now - timedelta(days=days))
        while True:
            runs = [
                r.dagster_run for r in instance.get_run_records(old, limit=batch, ascending=True)
            ]
            # the check executions first: once its run is gone, nothing finds them any more
            purged.check_executions += delete_check_executions(
                instance, [run.run_id for run in runs], checks
            )
            for run in runs:
                instance.delete_run(run.run_id)
                purged.runs[run.status.value] += 1
            if len(runs) < batch:
                break
    return purged


def describe(purged: Purged, success_days: float, failure_days: float) -> str:
    """One log line: how many runs of each status went, and the windows."""

    def window(days: float) -> str:
        return f"{days:g} day(s)" if days > 0 else "kept for ever"

    counts = ", ".join(f"{status.lower()} {count}" for status, count in purged.runs.items())
    return (
        f"deleted {sum(purged.runs.values())} run(s) with their event logs ({counts}) and "
        f"{purged.check_executions} asset check execution(s); successful runs: "
        f"{window(success_days)}, failed and canceled runs: {window(failure_days)}"
    )


@op(description="Deletes the runs (with event logs and check executions) past their window.")
def purge_runs(context: OpExecutionContext) -> None:
    settings = get_settings()
    success_days = settings.run_retention_success_days
    failure_days = settings.run_retention_failure_days
    purged = purge_old_runs(
        context.instance,
        datetime.now(UTC),
        success_days,
        failure_days,
    )
    context.log.info(describe(purged, success_days, failure_days))


@job(
    name=INSTANCE_RETENTION_JOB_NAME,
    executor_def=in_process_executor,
    description=(
        "Keeps the Dagster instance's database bounded: deletes successful runs older than "
        "LATAM_RUN_RETENTION_SUCCESS_DAYS and failed or canceled ones older than "
        "LATAM_RUN_RETENTION_FAILURE_DAYS, with their event logs and check executions; "
        "unfinished runs stay."
    ),
)
def instance_retention_job() -> None:
    purge_runs()
