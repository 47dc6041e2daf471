"""Full refresh: rebuild the curated tables and the marts from raw.

Use it after a change of transformation logic. It runs the same SQL files as the incremental path,
unrestricted, on emptied tables (each in one transaction, so readers see the old table until the
new one is committed), then refreshes every mart date. The Dagster way is the
`curated_full_refresh_job` (the mart partitions sensor then refreshes every date); from a shell:

    python -m latam_dagster.transform.full_refresh
"""

import time
from dataclasses import dataclass

from latam_dagster.db import migrate
from latam_dagster.settings import get_settings
from latam_dagster.transform.curated import StepResult, update_all
from latam_dagster.transform.marts import MartRefresh, refresh_pending


@dataclass
class FullRefresh:
    curated: list[StepResult]
    marts: list[MartRefresh]
    seconds: float


def full_refresh(url: str) -> FullRefresh:
    """Rebuild curated and marts from raw in `url`."""
    started = time.perf_counter()
    curated = update_all(url, full_refresh=True)
    marts = refresh_pending(url)
    return FullRefresh(curated, marts, time.perf_counter() - started)


def main() -> None:
    url = get_settings().warehouse_url
    migrate(url)
    result = full_refresh(url)
    for step in result.curated:
        print(f"{step.table}: {step.changed_rows} rows in {step.seconds:.1f}s")
    dates = sum(m.dates_refreshed for m in result.marts)
    print(f"marts: {dates} partition(s) refreshed; total {result.seconds:.1f}s")


if __name__ == "__main__":
    main()
