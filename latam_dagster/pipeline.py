"""`latam run-once`: the whole pipeline, once, synchronously, recorded in the Dagster instance.

It prepares what an empty system lacks (warehouse database and schemas by migration, the RabbitMQ
topology, DAGSTER_HOME with its dagster.yaml and the Dagster database) and then executes the
pipeline job in process against the instance in DAGSTER_HOME, so the run shows in the UI.
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
    """Warehouse migrations and RabbitMQ topology; returns the migrations applied."""
    applied = db.migrate(settings.warehouse_url)
    declare_topology(settings.amqp_url, Topology(settings.topology_prefix, settings.delivery_limit))
    return applied


def run_once(instance=None) -> RunOnceReport:
    """Run the pipeline job once; `instance` defaults to the one in DAGSTER_HOME."""
    from dagster import DagsterInstance

    from latam_dagster.definitions import defs

    settings = get_settings()
    prepare(settings)
    if instance is None:
        ensure_dagster_home(settings)
        instance = DagsterInstance.get()
    report = RunOnceReport(success=True)
    result = defs.get_job_def("pipeline_job").execute_in_process(
        instance=instance, raise_on_error=False, tags={"latam/trigger": "run-once"}
    )
    report.run_ids.append(result.run_id)
    for event in result.all_events:
        if event.event_type_value == "ASSET_MATERIALIZATION":
            mat = event.event_specific_data.materialization
            report.steps.append(
                {
                    "asset": mat.asset_key.to_user_string(),
                    "metadata": {k: v.value for k, v in mat.metadata.items()},
                }
            )
        elif event.event_type_value == "STEP_FAILURE":
            report.failures.append(f"{event.step_key}: {event.event_specific_data.error.message}")
        elif event.event_type_value == "ASSET_CHECK_EVALUATION":
            ev = event.event_specific_data
            if not ev.passed and ev.blocking:
                report.failures.append(f"blocking check failed: {ev.check_name} on {ev.asset_key}")
    report.success = result.success and not report.failures
    return report
