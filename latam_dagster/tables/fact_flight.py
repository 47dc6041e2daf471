"""`curated.fact_flight`: one row per flight, its current state from its status events."""

from typing import Any

from latam_dagster.contracts.validator import FLIGHT_STATUSES
from latam_dagster.tables.limits import (
    AIRPORT_CODE,
    CARRIER_CODE,
    DELAY_MAX,
    DELAY_MIN,
    FLIGHT_KEY,
    MAX_DISTANCE_KM,
    MAX_SEATS,
    delays_plausible,
    in_range,
    known_airport,
)
from latam_dagster.tables.rules import ROW, Rule, gxe
from latam_dagster.tables.scope import count_scope, xid
from latam_dagster.tables.table import Table, columns


def scope(cur: Any, marks: dict[str, int]) -> tuple[str, int | None]:
    """Flights with new events, plus flights at airports whose reference data changed."""
    cur.execute(
        """CREATE TEMP TABLE scope_flights ON COMMIT DROP AS
           SELECT DISTINCT flight_key FROM raw.flight_events
           WHERE ingest_xid >= %s::text::xid8""",
        (xid(marks, "raw.flight_events"),),
    )
    cur.execute(
        "SELECT array_agg(iata) FROM curated.dim_airport WHERE updated_xid >= %s::text::xid8",
        (xid(marks, "curated.dim_airport"),),
    )
    airports = cur.fetchone()[0]
    if airports:  # rare: the reference data was loaded or corrected
        cur.execute(
            """INSERT INTO scope_flights
               SELECT flight_key FROM staging.fact_flight
               WHERE (origin = ANY(%s) OR destination = ANY(%s))
               EXCEPT SELECT flight_key FROM scope_flights""",
            (airports, airports),
        )
    return "e.flight_key IN (SELECT flight_key FROM scope_flights)", count_scope(
        cur, "scope_flights"
    )


TABLE = Table(
    "curated",
    "fact_flight",
    key=("flight_key",),
    api_name="Flight",
    columns=columns(
        "flight_key:text carrier:text flight_number:int flight_date:date origin:text"
        " destination:text status:text scheduled_departure:timestamp? scheduled_arrival:timestamp?"
        " actual_departure:timestamp? actual_arrival:timestamp? dep_delay_min:float?"
        " arr_delay_min:float? cancelled:bool diverted:bool arrived:bool on_time:bool?"
        " tail_number:text? seat_capacity:int? distance_km:float?"
        " first_event_time:timestamp last_event_time:timestamp event_count:int",
        status=FLIGHT_STATUSES,
    ),
    inputs=("raw.flight_events", "curated.dim_airport"),
    scope=scope,
    rescope="SELECT flight_key FROM scope_flights",
    audited=True,
    date_column="flight_date",
    feeds_marts=True,
    event_time_column="last_event_time",
    references=("curated.dim_airport",),
    rules=(
        Rule(
            "flight_keys_unique",
            "One row per flight: flight_key and (carrier, flight_number, flight_date, origin) "
            "are present and unique, and the key is built from its parts.",
            (
                gxe.ExpectColumnValuesToNotBeNull(column="flight_key"),
                gxe.ExpectColumnValuesToBeUnique(column="flight_key"),
                gxe.ExpectCompoundColumnsToBeUnique(
                    column_list=["carrier", "flight_number", "flight_date", "origin"]
                ),
                gxe.ExpectColumnValuesToMatchRegex(column="flight_key", regex=FLIGHT_KEY),
            ),
        ),
        Rule(
            "flight_codes_valid",
            "Carrier is an IATA airline code, airports are IATA airport codes, the flight number "
            "is 1..9999 and the status one of the contract's.",
            (
                gxe.ExpectColumnValuesToMatchRegex(column="carrier", regex=CARRIER_CODE),
                gxe.ExpectColumnValuesToBeBetween(
                    column="flight_number", min_value=1, max_value=9999
                ),
                gxe.ExpectColumnValuesToMatchRegex(column="origin", regex=AIRPORT_CODE),
                gxe.ExpectColumnValuesToMatchRegex(column="destination", regex=AIRPORT_CODE),
                gxe.ExpectColumnValuesToBeInSet(column="status", value_set=list(FLIGHT_STATUSES)),
            ),
            level=ROW,
        ),
        Rule(
            "flight_airports_known",
            "Origin and destination are airports of curated.dim_airport.",
            (known_airport("origin"), known_airport("destination")),
            level=ROW,
        ),
        Rule(
            "flight_schedule_ordered",
            "Scheduled (and actual) arrival come after the departure they belong to.",
            (
                gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                    column_A="scheduled_arrival",
                    column_B="scheduled_departure",
                    ignore_row_if="either_value_is_missing",
                ),
                gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                    column_A="actual_arrival",
                    column_B="actual_departure",
                    ignore_row_if="either_value_is_missing",
                ),
            ),
            level=ROW,
        ),
        Rule(
            "flight_delays_plausible",
            f"Departure and arrival delays between {DELAY_MIN} and {DELAY_MAX} minutes.",
            delays_plausible("dep_delay_min", "arr_delay_min"),
            level=ROW,
        ),
        Rule(
            "flight_seat_capacity_valid",
            f"Seat capacity, when known, between 0 and {MAX_SEATS}.",
            (in_range("seat_capacity", 0, MAX_SEATS),),
            level=ROW,
        ),
        Rule(
            "flight_route_plausible",
            "A flight goes somewhere else, at most half way round the Earth.",
            (
                gxe.UnexpectedRowsExpectation(
                    unexpected_rows_query=(
                        "SELECT flight_key, origin, destination FROM {batch} "
                        "WHERE origin = destination"
                    ),
                    description="origin differs from destination",
                ),
                in_range("distance_km", 0, MAX_DISTANCE_KM),
            ),
            blocking=False,
            level=ROW,
        ),
    ),
)
