"""`latam run-once`: the whole pipeline, once, synchronously, recorded in the Dagster instance.

It prepares what an empty system lacks (warehouse database and schemas by migration, the RabbitMQ
topology, DAGSTER_HOME with its dagster.yaml and the Dagster database), executes the pipeline job
(drains, reference data, curated tables) in process against the instance in DAGSTER_HOME, and then
the marts job for the flight dates the batch touched, one run per range of dates, so every run shows
in the UI. `full_refresh` rebuilds curated and marts from raw the same way.

`run_once`, `full_refresh` and the demo migrate first because they are the one-machine deploy:
code and warehouse move together. Everywhere else (Dagster runs, the API, the exporter) only the
schema version is checked, and `latam migrate` is the deploy step. Migrations run as the owner
(LATAM_WAREHOUSE_URL); the jobs run as the pipeline role (`Settings.pipeline_url`).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from latam_dagster import db
from latam_dagster.ingest.topology import Topology, declare_topology
from latam_dagster.settings import Settings, get_settings, normalize_pg_url

DAGSTER_YAML_TEMPLATE = (
    Path(__file__).resolve().parent.parent / "infra" / "dagster" / "dagster.yaml"
)


@dataclass
class RunOnceReport:
    success: bool
    run_ids: list[str] = field(default_factory=list)
    steps: list[dict] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def ensure_dagster_home(settings: Settings) -> Path:
    """Create DAGSTER_HOME with the platform's dagster.yaml and the Dagster database if needed."""
    home = Path(settings.dagster_home)
    home.mkdir(parents=True, exist_ok=True)
    target = home / "dagster.yaml"
    if not target.exists():
        shutil.copyfile(DAGSTER_YAML_TEMPLATE, target)
    os.environ["DAGSTER_HOME"] = str(home)
    # dagster-postgres needs psycopg2: a plain postgresql:// URL would pick another driver
    os.environ["LATAM_DAGSTER_PG_URL"] = normalize_pg_url(settings.dagster_pg_url)
    if "postgres" in target.read_text():
        db.ensure_database(settings.dagster_pg_url)
    return home


def prepare(settings: Settings) -> list[str]:
    """Warehouse migrations, views and RabbitMQ topology; returns the migrations applied."""
    from latam_dagster.assets.curated import apply_flight_event_history

    applied = db.migrate(settings.warehouse_url)
    # the view belongs to the pipeline role, which (re)defines it in its runs as well
    apply_flight_event_history(settings.pipeline_url)
    declare_topology(settings.amqp_url, Topology(settings.topology_prefix, settings.delivery_limit))
    return applied


def _reason(error) -> str:
    """The message of a step's error without its class path (a `Failure` says why itself)."""
    message = error.message.strip()
    if error.cls_name == "Failure":
        message = message.split(": ", 1)[-1]
    return message


def _collect(result, report: RunOnceReport) -> None:
    """Add one run's materializations, failures and failed blocking checks to the report."""
    failures_before = len(report.failures)
    report.run_ids.append(result.run_id)
    for event in result.all_events:
        if event.event_type_value == "ASSET_MATERIALIZATION":
            mat = event.event_specific_data.materialization
            step = {
                "asset": mat.asset_key.to_user_string(),
                "metadata": {k: v.value for k, v in mat.metadata.items()},
            }
            if mat.partition:
                step["partition"] = mat.partition
            report.steps.append(step)
        elif event.event_type_value == "STEP_FAILURE":
            report.failures.append(f"{event.step_key}: {_reason(event.event_specific_data.error)}")
        elif event.event_type_value == "ASSET_CHECK_EVALUATION":
            ev = event.event_specific_data
            # a blocking check stops what is downstream only when it fails with ERROR severity
            if not ev.passed and ev.blocking and ev.severity.value == "ERROR":
                report.failures.append(
                    f"blocking check failed: {ev.check_name} on {ev.asset_key.to_user_string()}"
                )
    if not result.success and len(report.failures) == failures_before:
        report.failures.append(f"run {result.run_id} failed")


def refresh_pending_marts(instance, report: RunOnceReport, tag: str) -> None:
    """Run the marts job for every range of pending flight dates that has partitions.

    One run per range (a single-run backfill); each recomputes only the pending dates of its range.
    Pending dates without a partition (before LATAM_PARTITION_START or in the future) stay
    pending and are reported as warnings.
    """
    from latam_dagster.definitions import defs
    from latam_dagster.jobs import TRIGGER_TAG
    from latam_dagster.sensors.mart_sensors import (
        only_pending_config,
        partition_bounds,
        range_tags,
    )
    from latam_dagster.transform.marts import (
        date_ranges,
        dates_outside,
        pending_dates_at,
        split_in_bounds,
    )

    settings = get_settings()
    pending = pending_dates_at(settings.pipeline_url)
    bounds = partition_bounds()
    inside, _outside = split_in_bounds(pending, *bounds)
    # the warning names the setting to change: a bare count leaves the reader guessing
    report.warnings += dates_outside(pending, *bounds).messages(f"run `latam {tag}` again")
    job = defs.resolve_job_def("marts_job")
    for start, end in date_ranges(inside):
        result = job.execute_in_process(
            instance=instance,
            raise_on_error=False,
            run_config=only_pending_config(),
            tags={**range_tags(start, end), TRIGGER_TAG: tag},
            resources=current_resources(settings),
        )
        _collect(result, report)


def current_resources(settings: Settings) -> dict:
    """Resources built from the settings as they are now (not as they were at import)."""
    from latam_dagster.resources import RabbitMQResource, WarehouseResource

    return {
        "warehouse": WarehouseResource(url=settings.pipeline_url),
        "rabbitmq": RabbitMQResource(
            amqp_url=settings.amqp_url,
            prefix=settings.topology_prefix,
            delivery_limit=settings.delivery_limit,
        ),
    }


def _instance(settings: Settings, instance):
    from dagster import DagsterInstance

    if instance is None:
        ensure_dagster_home(settings)
        instance = DagsterInstance.get()
    return instance


def run_once(instance=None) -> RunOnceReport:
    """Run the pipeline job once, then the touched mart partitions; `instance` defaults to the
    one in DAGSTER_HOME."""
    from latam_dagster.definitions import defs

    settings = get_settings()
    prepare(settings)
    instance = _instance(settings, instance)
    report = RunOnceReport(success=True)
    result = defs.resolve_job_def("pipeline_job").execute_in_process(
        instance=instance,
        raise_on_error=False,
        tags={"latam/trigger": "run-once"},
        resources=current_resources(settings),
    )
    _collect(result, report)
    if result.success:
        refresh_pending_marts(instance, report, "run-once")
    report.success = not report.failures
    return report


def full_refresh(instance=None) -> RunOnceReport:
    """Rebuild every curated table from raw, then every mart partition, through Dagster.

    The way to apply a change of transformation logic: the result equals what the incremental
    path would have produced had the new logic been there from the start.
    """
    from latam_dagster.definitions import defs

    settings = get_settings()
    prepare(settings)
    instance = _instance(settings, instance)
    report = RunOnceReport(success=True)
    result = defs.resolve_job_def("curated_full_refresh_job").execute_in_process(
        instance=instance, raise_on_error=False, resources=current_resources(settings)
    )
    _collect(result, report)
    if result.success:
        refresh_pending_marts(instance, report, "full-refresh")
    report.success = not report.failures
    return report
