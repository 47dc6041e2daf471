"""Reference data assets: curated.dim_airport, from the `airportsdata` package.

Loaded when missing and refreshed weekly by declarative automation; a reload rewrites only the
airports whose data changed, so downstream distances are recomputed only where needed.
"""

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AutomationCondition,
    MaterializeResult,
    MetadataValue,
    asset,
)

from latam_dagster.resources import WarehouseResource
from latam_dagster.transform.airports import load_dim_airport

REFERENCE_GROUP = "reference"
DIM_AIRPORT_KEY = AssetKey(["curated", "dim_airport"])
REFERENCE_REFRESH_CRON = "0 4 * * 1"


@asset(
    key=DIM_AIRPORT_KEY,
    group_name=REFERENCE_GROUP,
    kinds={"postgres", "pandas"},
    description=(
        "`curated.dim_airport`: every IATA-coded airport (ICAO code, name, city, country, "
        "coordinates, time zone) from the `airportsdata` package."
    ),
    metadata={"table": "curated.dim_airport"},
    automation_condition=(
        # loaded as soon as it is missing (also on the very first evaluation, unlike on_missing),
        # without retrying a failed load on every tick; then refreshed weekly
        (
            AutomationCondition.missing()
            & ~AutomationCondition.in_progress()
            & ~AutomationCondition.execution_failed()
        ).with_label("missing")
        | AutomationCondition.on_cron(REFERENCE_REFRESH_CRON)
    ),
)
def dim_airport(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
    load = load_dim_airport(warehouse.url)
    context.log.info(
        f"dim_airport: {load.airports} airports, {load.changed_rows} changed "
        f"(airportsdata {load.source_version})"
    )
    return MaterializeResult(
        metadata={
            "airports": load.airports,
            "changed_rows": load.changed_rows,
            "airportsdata_version": load.source_version,
            "seconds": MetadataValue.float(round(load.seconds, 3)),
        }
    )


reference_assets = [dim_airport]
