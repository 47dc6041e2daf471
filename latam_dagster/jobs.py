"""Jobs: one drain job per queue (sensor-triggered micro-batches) and the pipeline job."""

from __future__ import annotations

from dagster import AssetSelection, JobDefinition, define_asset_job, in_process_executor

from latam_dagster.assets.raw import RAW_GROUP, raw_asset_key
from latam_dagster.ingest.topology import QUEUES

DRAIN_TAG = "latam/drain_queue"


def drain_job_name(family: str) -> str:
    return f"drain_{family}_job"


def build_drain_job(family: str) -> JobDefinition:
    """Drain one queue, then refresh whatever depends on its raw table in the same run."""
    raw = AssetSelection.assets(raw_asset_key(family))
    return define_asset_job(
        name=drain_job_name(family),
        selection=raw,
        executor_def=in_process_executor,
        tags={DRAIN_TAG: family},
        description=f"Micro-batch: drain the {family} queue into raw.",
    )


drain_jobs = [build_drain_job(f) for f in QUEUES]

# Everything unpartitioned, in dependency order: used by `latam run-once` and from the UI.
pipeline_job = define_asset_job(
    name="pipeline_job",
    selection=AssetSelection.groups(RAW_GROUP),
    executor_def=in_process_executor,
    description="Drain every queue, then update every unpartitioned downstream asset.",
)
