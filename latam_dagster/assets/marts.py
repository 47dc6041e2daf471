"""Mart assets, partitioned by flight date, refreshed for the dates their inputs changed.

Each run covers a range of daily partitions in one run (single-run backfill policy): a backfill of a
year from the UI is one run and one transaction per mart. With `only_pending: true` (what the
pending-partition sensor and `latam run-once` send) a run recomputes only the dates within its
range whose curated flights changed since the mart last saw them; the others are already current.
"""

from datetime import timedelta

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    BackfillPolicy,
    Config,
    DailyPartitionsDefinition,
    MaterializeResult,
    asset,
)
from pydantic import Field

from latam_dagster.assets.curated import curated_key, sql_header, sql_version
from latam_dagster.resources import WarehouseResource
from latam_dagster.settings import get_settings
from latam_dagster.transform.marts import MARTS, refresh_mart
from latam_dagster.transform.sqlfiles import load_sql

MARTS_GROUP = "marts"


def build_daily_partitions() -> DailyPartitionsDefinition:
    """One partition per flight date, from LATAM_PARTITION_START up to and including today (UTC)."""
    return DailyPartitionsDefinition(start_date=get_settings().partition_start, end_offset=1)


daily_partitions = build_daily_partitions()


def mart_key(mart: str) -> AssetKey:
    return AssetKey(["marts", mart])


class MartConfig(Config):
    """Run config of the mart assets."""

    only_pending: bool = Field(
        default=False,
        description=(
            "Recompute only the dates of the range whose curated data changed since the last "
            "refresh (the others are current); false recomputes every date of the range."
        ),
    )


def build_mart_asset(mart: str) -> AssetsDefinition:
    sql = load_sql("marts", mart)

    @asset(
        key=mart_key(mart),
        deps=[curated_key("fact_flight"), curated_key("flight_passenger_load")],
        partitions_def=daily_partitions,
        backfill_policy=BackfillPolicy.single_run(),
        group_name=MARTS_GROUP,
        kinds={"postgres", "sql"},
        description=sql_header(sql),
        code_version=sql_version(sql),
        metadata={"table": f"marts.{mart}", "sql_file": f"assets/sql/marts/{mart}.sql"},
    )
    def _refresh(
        context: AssetExecutionContext, config: MartConfig, warehouse: WarehouseResource
    ) -> MaterializeResult:
        window = context.partition_time_window
        start = window.start.date()
        end = (window.end - timedelta(days=1)).date()
        result = refresh_mart(warehouse.url, mart, start, end, only_pending=config.only_pending)
        context.log.info(
            f"marts.{mart} {start}..{end}: {result.dates_refreshed} date(s) refreshed, "
            f"{result.rows} row(s) in {result.seconds:.2f}s"
        )
        return MaterializeResult(metadata=result.as_metadata())

    return _refresh


mart_assets: list[AssetsDefinition] = [build_mart_asset(m) for m in MARTS]
