"""curated.dim_airport from the `airportsdata` package (IATA-coded airports worldwide).

The package is the reference: it is versioned, so a reload after an upgrade is a normal run. A row
is rewritten only when its values differ, which keeps `updated_xid` meaningful: fact_flight
recomputes distances only for the flights at airports that actually changed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

import airportsdata
from psycopg2.extras import execute_values

from latam_dagster.db import connection
from latam_dagster.transform.session import transform_transaction

if TYPE_CHECKING:
    import pandas as pd

COLUMNS = (
    "iata",
    "icao",
    "name",
    "city",
    "subdivision",
    "country",
    "latitude",
    "longitude",
    "elevation_ft",
    "time_zone",
)


@dataclass
class AirportLoad:
    airports: int
    changed_rows: int
    source_version: str
    seconds: float


@cache
def _iata_airports() -> dict[str, dict]:
    """The package's airports by IATA code (parsing its CSV takes half a second)."""
    return airportsdata.load("IATA")


def airport_frame() -> pd.DataFrame:
    """Every IATA airport of the installed `airportsdata`, with the dim_airport column names."""
    import pandas as pd  # imported here: every run process loads this module, few load airports

    raw = pd.DataFrame.from_dict(_iata_airports(), orient="index")
    frame = raw.rename(
        columns={
            "subd": "subdivision",
            "lat": "latitude",
            "lon": "longitude",
            "elevation": "elevation_ft",
            "tz": "time_zone",
        }
    )[list(COLUMNS)]
    frame["elevation_ft"] = frame["elevation_ft"].round().astype("Int64")
    # empty strings in the package mean "unknown"
    text = ["icao", "city", "subdivision", "country", "time_zone"]
    frame[text] = frame[text].replace("", None)
    return frame.reset_index(drop=True)


def load_dim_airport(url: str) -> AirportLoad:
    """Upsert the airports; rows that did not change are left alone."""
    import pandas as pd

    started = time.perf_counter()
    frame = airport_frame()
    rows = [
        tuple(None if pd.isna(v) else v for v in r)
        for r in frame.astype(object).itertuples(index=False)
    ]
    cols = ", ".join(COLUMNS)
    updates = ", ".join(f"{c} = excluded.{c}" for c in COLUMNS[1:])
    with transform_transaction(url, "curated.dim_airport") as cur:
        execute_values(
            cur,
            f"""INSERT INTO curated.dim_airport AS t ({cols}) VALUES %s
                ON CONFLICT (iata) DO UPDATE SET {updates},
                    updated_at = now(), updated_xid = pg_current_xact_id()
                WHERE ({", ".join("t." + c for c in COLUMNS[1:])})
                      IS DISTINCT FROM ({", ".join("excluded." + c for c in COLUMNS[1:])})""",
            rows,
            page_size=2000,
        )
        cur.execute(
            "SELECT count(*) FROM curated.dim_airport WHERE updated_xid = pg_current_xact_id()"
        )
        changed = int(cur.fetchone()[0])
    return AirportLoad(
        airports=len(rows),
        changed_rows=changed,
        source_version=str(getattr(airportsdata, "__version__", "unknown")),
        seconds=time.perf_counter() - started,
    )


def seed_dim_airport(url: str) -> int | None:
    """Load curated.dim_airport when it is empty; returns the airports loaded, None if not needed.

    A re-created or restored warehouse behind an existing Dagster instance would otherwise stay
    without airports: the instance remembers an earlier materialization, so automation does not
    reload it, and every flight is held back as at an unknown airport. `latam migrate` and
    `latam init` call this, so the deploy step leaves no warehouse without reference data.
    """
    with connection(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT EXISTS (SELECT 1 FROM curated.dim_airport)")
        if cur.fetchone()[0]:
            return None
    return load_dim_airport(url).airports
