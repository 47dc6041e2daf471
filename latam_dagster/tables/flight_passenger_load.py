"""`curated.flight_passenger_load`: passenger counts and load factor per flight."""

from typing import Any

from latam_dagster.tables.limits import (
    MAX_LOAD_FACTOR,
    MAX_SEATS,
    at_least,
    in_range,
    keys_present_and_unique,
)
from latam_dagster.tables.rules import ROW, Rule, gxe
from latam_dagster.tables.scope import count_scope, xid
from latam_dagster.tables.table import Table, columns


def scope(cur: Any, marks: dict[str, int]) -> tuple[str, int | None]:
    """Flights whose passengers or whose computed fact_flight row (seat capacity) changed."""
    cur.execute(
        """CREATE TEMP TABLE scope_flights ON COMMIT DROP AS
           SELECT flight_key FROM curated.flight_passenger WHERE updated_xid >= %s::text::xid8
           UNION
           SELECT flight_key FROM staging.fact_flight WHERE updated_xid >= %s::text::xid8""",
        (xid(marks, "curated.flight_passenger"), xid(marks, "curated.fact_flight")),
    )
    return "flight_key IN (SELECT flight_key FROM scope_flights)", count_scope(cur, "scope_flights")


TABLE = Table(
    "curated",
    "flight_passenger_load",
    key=("flight_key",),
    # served inside a flight's detail (GET /flights/{flight_key})
    columns=columns(
        "passengers_booked:int? passengers_checked_in:int? passengers_boarded:int?"
        " passengers_cancelled:int? load_factor:float?"
    ),
    inputs=("curated.flight_passenger", "curated.fact_flight"),
    scope=scope,
    rescope="SELECT flight_key FROM scope_flights",
    audited=True,
    date_column="flight_date",
    feeds_marts=True,
    references=("curated.fact_flight",),
    rules=(
        Rule(
            "load_keys_unique",
            "One row per flight key.",
            keys_present_and_unique("flight_key"),
        ),
        Rule(
            "load_counts_valid",
            "Passenger counts are not negative and nest: booked >= checked in >= boarded.",
            (
                in_range("passengers_booked", 0, None),
                in_range("passengers_cancelled", 0, None),
                at_least("passengers_booked", "passengers_checked_in"),
                at_least("passengers_checked_in", "passengers_boarded"),
                in_range("passengers_boarded", 0, None),
            ),
            level=ROW,
        ),
        Rule(
            "load_factor_plausible",
            f"Load factor, when known, between 0 and {MAX_LOAD_FACTOR}; seat capacity not negative.",
            (
                in_range("load_factor", 0, MAX_LOAD_FACTOR),
                in_range("seat_capacity", 0, MAX_SEATS),
            ),
            level=ROW,
        ),
        Rule(
            "load_flight_known",
            "Passengers belong to a flight the platform knows (staging.fact_flight: published or "
            "held back). Passenger events may arrive before their flight's, so this warns rather "
            "than holds back.",
            (
                gxe.ExpectColumnValuesToBeInReferenceTable(
                    column="flight_key",
                    reference_table="staging.fact_flight",
                    reference_column="flight_key",
                ),
            ),
            blocking=False,
            level=ROW,
        ),
    ),
)
