"""Jobs: micro-batch drains (raw + curated), the pipeline job, the marts job, the full refresh."""

from dagster import (
    AssetSelection,
    RunConfig,
    define_asset_job,
    in_process_executor,
)

from latam_dagster.assets.curated import (
    CURATED_GROUP,
    FLIGHT_EVENT_HISTORY_KEY,
    CuratedConfig,
    curated_key,
)
from latam_dagster.assets.marts import MARTS_GROUP, daily_partitions
from latam_dagster.assets.raw import RAW_GROUP
from latam_dagster.assets.reference import REFERENCE_GROUP
from latam_dagster.quality.gx_checks import mart_input_checks
from latam_dagster.transform.curated import TABLES

# the queues a drain run drains, comma-separated (the exporter counts drain runs per queue by it)
DRAIN_TAG = "latam/drain_queues"
TRIGGER_TAG = "latam/trigger"
DRAIN_JOB_NAME = "drain_job"


def drain_tag_value(families: list[str]) -> str:
    return ",".join(families)


# Micro-batch: drain the queues into raw, then update the curated tables that read them. The
# queue sensor runs a subset of it: the queues with traffic and the tables they feed.
drain_job = define_asset_job(
    name=DRAIN_JOB_NAME,
    selection=(
        AssetSelection.groups(RAW_GROUP).downstream()
        & AssetSelection.groups(RAW_GROUP, CURATED_GROUP)
    )
    - AssetSelection.assets(FLIGHT_EVENT_HISTORY_KEY),
    executor_def=in_process_executor,
    description=(
        "Micro-batch: drain the queues with traffic into raw, all at once, then apply the new "
        "events to the curated tables that read them."
    ),
)

# Everything unpartitioned, in dependency order: used by `latam run-once` and from the UI.
pipeline_job = define_asset_job(
    name="pipeline_job",
    selection=AssetSelection.groups(RAW_GROUP, REFERENCE_GROUP, CURATED_GROUP),
    executor_def=in_process_executor,
    description=(
        "Drain every queue, load reference data, then update every curated table. "
        "`latam run-once` follows it with the mart partitions the batch touched."
    ),
)

# Daily marts; a run covers one partition or a range of them (single-run backfills).
marts_job = define_asset_job(
    name="marts_job",
    # the blocking checks of the marts' inputs run first: bad curated data never reaches a mart
    selection=AssetSelection.groups(MARTS_GROUP) | mart_input_checks(),
    partitions_def=daily_partitions,
    executor_def=in_process_executor,
    description="Refresh the daily marts for a flight date or a range of flight dates.",
)

# Rebuild of the curated layer from raw after a logic change. Every flight date becomes pending,
# so the mart partitions sensor then refreshes the marts (or launch a marts backfill from the UI).
curated_full_refresh_job = define_asset_job(
    name="curated_full_refresh_job",
    selection=AssetSelection.groups(REFERENCE_GROUP, CURATED_GROUP),
    executor_def=in_process_executor,
    config=RunConfig(
        ops={
            curated_key(t).to_python_identifier(): CuratedConfig(full_refresh=True) for t in TABLES
        }
    ),
    tags={TRIGGER_TAG: "full-refresh"},
    description=(
        "Full refresh: rebuild every curated table from raw (same SQL as the incremental path); "
        "the marts follow for every date."
    ),
)
