"""The expectation suites of every checked table, one `TableSuite` per table.

Each rule becomes one Dagster asset check on the table's asset. Blocking rules are the critical
ones (keys, codes, references, times, ranges, mart consistency): their failure stops the assets
downstream in the same run. The limits below are the plausible bounds of the business, not of the
column types; widen them here, in review, when the business changes.
"""

from __future__ import annotations

from latam_dagster.contracts.validator import FLIGHT_STATUSES
from latam_dagster.ingest.topology import RAW_TABLE_OF_QUEUE
from latam_dagster.quality.audit import AuditedTable
from latam_dagster.quality.rules import ROW, Rule, TableSuite, gxe
from latam_dagster.settings import get_quality_settings

CARRIER_CODE = r"^[A-Z0-9]{2}$"
AIRPORT_CODE = r"^[A-Z]{3}$"
# {carrier}{flight_number}-{flight_date}-{origin}, the number without leading zeros
FLIGHT_KEY = r"^[A-Z0-9]{2}[1-9][0-9]{0,3}-[0-9]{4}-[0-9]{2}-[0-9]{2}-[A-Z]{3}$"
DELAY_MIN, DELAY_MAX = -180, 2880  # 3 h early .. 48 h late, in minutes
MAX_SEATS = 1000  # the largest airliners seat about 850
MAX_LOAD_FACTOR = 1.05  # boarded / seats: a few lap infants at most above a full cabin
MAX_DISTANCE_KM = 20100  # half the Earth's circumference
MAX_GROUND_SPEED_KT = 800
ALTITUDE_MIN_FT, ALTITUDE_MAX_FT = -1500, 60000

DIM_AIRPORT = ("curated", "dim_airport")
FACT_FLIGHT = ("curated", "fact_flight")
PASSENGER_LOAD = ("curated", "flight_passenger_load")


def _in_range(column: str, low: float | None, high: float | None, **extra) -> object:
    return gxe.ExpectColumnValuesToBeBetween(column=column, min_value=low, max_value=high, **extra)


def _known_airport(column: str) -> object:
    return gxe.ExpectColumnValuesToBeInReferenceTable(
        column=column, reference_table="curated.dim_airport", reference_column="iata"
    )


dim_airport = TableSuite(
    name="curated.dim_airport",
    asset_key=DIM_AIRPORT,
    table="curated.dim_airport",
    key_columns=("iata",),
    rules=(
        Rule(
            "airport_keys_valid",
            "Every airport has one row, keyed by a three-letter IATA code.",
            (
                gxe.ExpectColumnValuesToNotBeNull(column="iata"),
                gxe.ExpectColumnValuesToBeUnique(column="iata"),
                gxe.ExpectColumnValuesToMatchRegex(column="iata", regex=AIRPORT_CODE),
            ),
        ),
        Rule(
            "airport_coordinates_in_range",
            "Latitude within [-90, 90] and longitude within [-180, 180]: distances depend on them.",
            (_in_range("latitude", -90, 90), _in_range("longitude", -180, 180)),
        ),
        Rule(
            "airport_time_zone_known",
            "Airports without a time zone cannot place local flight dates.",
            (gxe.ExpectColumnValuesToNotBeNull(column="time_zone"),),
            blocking=False,
        ),
    ),
)

fact_flight = TableSuite(
    name="curated.fact_flight",
    asset_key=FACT_FLIGHT,
    table="curated.fact_flight",
    key_columns=("flight_key",),
    reference_assets=(DIM_AIRPORT,),
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
            (_known_airport("origin"), _known_airport("destination")),
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
            (
                _in_range("dep_delay_min", DELAY_MIN, DELAY_MAX),
                _in_range("arr_delay_min", DELAY_MIN, DELAY_MAX),
            ),
            level=ROW,
        ),
        Rule(
            "flight_seat_capacity_valid",
            f"Seat capacity, when known, between 0 and {MAX_SEATS}.",
            (_in_range("seat_capacity", 0, MAX_SEATS),),
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
                _in_range("distance_km", 0, MAX_DISTANCE_KM),
            ),
            blocking=False,
            level=ROW,
        ),
    ),
)

flight_passenger_load = TableSuite(
    name="curated.flight_passenger_load",
    asset_key=PASSENGER_LOAD,
    table="curated.flight_passenger_load",
    key_columns=("flight_key",),
    reference_assets=(FACT_FLIGHT,),
    rules=(
        Rule(
            "load_keys_unique",
            "One row per flight key.",
            (
                gxe.ExpectColumnValuesToNotBeNull(column="flight_key"),
                gxe.ExpectColumnValuesToBeUnique(column="flight_key"),
            ),
        ),
        Rule(
            "load_counts_valid",
            "Passenger counts are not negative and nest: booked >= checked in >= boarded.",
            (
                _in_range("passengers_booked", 0, None),
                _in_range("passengers_cancelled", 0, None),
                gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                    column_A="passengers_booked", column_B="passengers_checked_in", or_equal=True
                ),
                gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                    column_A="passengers_checked_in", column_B="passengers_boarded", or_equal=True
                ),
                _in_range("passengers_boarded", 0, None),
            ),
            level=ROW,
        ),
        Rule(
            "load_factor_plausible",
            f"Load factor, when known, between 0 and {MAX_LOAD_FACTOR}; seat capacity not negative.",
            (
                _in_range("load_factor", 0, MAX_LOAD_FACTOR),
                _in_range("seat_capacity", 0, MAX_SEATS),
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

aircraft_position_latest = TableSuite(
    name="curated.aircraft_position_latest",
    asset_key=("curated", "aircraft_position_latest"),
    table="curated.aircraft_position_latest",
    key_columns=("tail_number",),
    rules=(
        Rule(
            "position_keys_unique",
            "One latest position per aircraft (tail number).",
            (
                gxe.ExpectColumnValuesToNotBeNull(column="tail_number"),
                gxe.ExpectColumnValuesToBeUnique(column="tail_number"),
            ),
        ),
        Rule(
            "position_coordinates_in_range",
            "Latitude within [-90, 90], longitude within [-180, 180], heading within [0, 360).",
            (
                _in_range("latitude", -90, 90),
                _in_range("longitude", -180, 180),
                _in_range("heading_deg", 0, 360, strict_max=True),
            ),
            level=ROW,
        ),
        Rule(
            "position_motion_plausible",
            f"Ground speed within [0, {MAX_GROUND_SPEED_KT}] kt and altitude within "
            f"[{ALTITUDE_MIN_FT}, {ALTITUDE_MAX_FT}] ft.",
            (
                _in_range("ground_speed_kt", 0, MAX_GROUND_SPEED_KT),
                _in_range("altitude_ft", ALTITUDE_MIN_FT, ALTITUDE_MAX_FT),
            ),
            blocking=False,
            level=ROW,
        ),
    ),
)

# The marts hold, for each date they are current for, exactly what fact_flight says. A date whose
# flights changed after the mart's refresh is pending (the next run refreshes it) and not compared.
_CURRENT_DATES = """SELECT s.flight_date FROM marts.partition_state AS s
    LEFT JOIN curated.changed_flight_dates AS c ON c.flight_date = s.flight_date
    WHERE s.mart = '{mart}' AND s.refreshed_seq >= coalesce(c.change_seq, 0)"""

ROUTE_COUNTS_QUERY = f"""
SELECT flight_date, carrier, origin, destination,
       m.flights AS mart_flights, f.flights AS fact_flights,
       m.cancelled AS mart_cancelled, f.cancelled AS fact_cancelled,
       m.diverted AS mart_diverted, f.diverted AS fact_diverted,
       m.arrived AS mart_arrived, f.arrived AS fact_arrived,
       m.passengers_boarded AS mart_boarded, f.boarded AS fact_boarded
FROM {{batch}} AS m
FULL JOIN (
    SELECT ff.flight_date, ff.carrier, ff.origin, ff.destination, count(*) AS flights,
           count(*) FILTER (WHERE ff.cancelled) AS cancelled,
           count(*) FILTER (WHERE ff.diverted) AS diverted,
           count(*) FILTER (WHERE ff.arrived) AS arrived,
           coalesce(sum(l.passengers_boarded), 0) AS boarded
    FROM (SELECT * FROM curated.fact_flight WHERE {{dates}}) AS ff
    LEFT JOIN curated.flight_passenger_load AS l ON l.flight_key = ff.flight_key
    GROUP BY ff.flight_date, ff.carrier, ff.origin, ff.destination
) AS f USING (flight_date, carrier, origin, destination)
WHERE flight_date IN ({_CURRENT_DATES.format(mart="route_daily_performance")})
  AND (m.flights, m.cancelled, m.diverted, m.arrived, m.passengers_boarded)
      IS DISTINCT FROM (f.flights, f.cancelled, f.diverted, f.arrived, f.boarded)
"""

AIRPORT_COUNTS_QUERY = f"""
SELECT flight_date, airport,
       m.departures AS mart_departures, f.departures AS fact_departures,
       m.arrivals AS mart_arrivals, f.arrivals AS fact_arrivals,
       m.cancelled AS mart_cancelled, f.cancelled AS fact_cancelled
FROM {{batch}} AS m
FULL JOIN (
    SELECT flight_date, airport,
           count(*) FILTER (WHERE departure AND NOT cancelled) AS departures,
           count(*) FILTER (WHERE NOT departure AND NOT cancelled AND NOT diverted) AS arrivals,
           count(DISTINCT flight_key) FILTER (WHERE cancelled) AS cancelled
    FROM (
        SELECT flight_key, flight_date, origin AS airport, TRUE AS departure, cancelled, diverted
        FROM curated.fact_flight WHERE {{dates}}
        UNION ALL
        SELECT flight_key, flight_date, destination, FALSE, cancelled, diverted
        FROM curated.fact_flight WHERE {{dates}}
    ) AS movements
    GROUP BY flight_date, airport
) AS f USING (flight_date, airport)
WHERE flight_date IN ({_CURRENT_DATES.format(mart="airport_daily_traffic")})
  AND (m.departures, m.arrivals, m.cancelled)
      IS DISTINCT FROM (f.departures, f.arrivals, f.cancelled)
"""

route_daily_performance = TableSuite(
    name="marts.route_daily_performance",
    asset_key=("marts", "route_daily_performance"),
    table="marts.route_daily_performance",
    key_columns=("flight_date", "carrier", "origin", "destination"),
    date_column="flight_date",
    reference_assets=(FACT_FLIGHT, PASSENGER_LOAD),
    rules=(
        Rule(
            "route_keys_unique",
            "One row per flight date, carrier and route.",
            (
                gxe.ExpectCompoundColumnsToBeUnique(
                    column_list=["flight_date", "carrier", "origin", "destination"]
                ),
                gxe.ExpectColumnValuesToNotBeNull(column="carrier"),
                gxe.ExpectColumnValuesToNotBeNull(column="origin"),
                gxe.ExpectColumnValuesToNotBeNull(column="destination"),
            ),
        ),
        Rule(
            "route_metrics_in_range",
            "Counts are not negative and within the day's flights; on-time share within "
            f"[0, 100]; load factor within [0, {MAX_LOAD_FACTOR}].",
            (
                _in_range("flights", 1, None),
                _in_range("cancelled", 0, None),
                _in_range("diverted", 0, None),
                _in_range("on_time_arrivals", 0, None),
                gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                    column_A="flights", column_B="arrived", or_equal=True
                ),
                gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                    column_A="arrived", column_B="on_time_arrivals", or_equal=True
                ),
                _in_range("on_time_pct", 0, 100),
                _in_range("avg_load_factor", 0, MAX_LOAD_FACTOR),
            ),
        ),
        Rule(
            "route_counts_match_fact_flight",
            "For every date the mart is current for, flights, cancelled, diverted, arrived and "
            "boarded passengers per route equal curated.fact_flight's (and loads').",
            (
                gxe.UnexpectedRowsExpectation(
                    unexpected_rows_query=ROUTE_COUNTS_QUERY,
                    description="route counts equal curated.fact_flight's",
                ),
            ),
        ),
    ),
)

airport_daily_traffic = TableSuite(
    name="marts.airport_daily_traffic",
    asset_key=("marts", "airport_daily_traffic"),
    table="marts.airport_daily_traffic",
    key_columns=("flight_date", "airport"),
    date_column="flight_date",
    reference_assets=(FACT_FLIGHT, DIM_AIRPORT),
    rules=(
        Rule(
            "airport_traffic_keys_unique",
            "One row per flight date and airport, the airport known to curated.dim_airport.",
            (
                gxe.ExpectCompoundColumnsToBeUnique(column_list=["flight_date", "airport"]),
                gxe.ExpectColumnValuesToNotBeNull(column="airport"),
                _known_airport("airport"),
            ),
        ),
        Rule(
            "airport_traffic_counts_match_fact_flight",
            "For every date the mart is current for, departures, arrivals and cancellations per "
            "airport equal curated.fact_flight's.",
            (
                gxe.UnexpectedRowsExpectation(
                    unexpected_rows_query=AIRPORT_COUNTS_QUERY,
                    description="airport counts equal curated.fact_flight's",
                ),
                _in_range("departures", 0, None),
                _in_range("arrivals", 0, None),
                _in_range("cancelled", 0, None),
            ),
        ),
        Rule(
            "airport_traffic_delays_plausible",
            f"Average delays between {DELAY_MIN} and {DELAY_MAX} minutes.",
            (
                _in_range("avg_dep_delay_min", DELAY_MIN, DELAY_MAX),
                _in_range("avg_arr_delay_min", DELAY_MIN, DELAY_MAX),
            ),
            blocking=False,
        ),
    ),
)


def quarantine_rate_query(family: str, raw_table: str, window_hours: float) -> str:
    """One row: messages accepted into `raw_table` and quarantined from the queue, in the window."""
    window = f"now() - interval '{float(window_hours)} hours'"
    return f"""
SELECT '{family}' AS queue_family, accepted, quarantined,
       round(100.0 * quarantined / nullif(accepted + quarantined, 0), 3) AS quarantine_pct
FROM (SELECT (SELECT count(*) FROM {raw_table} WHERE received_at >= {window}) AS accepted,
             (SELECT count(*) FROM raw.quarantine
              WHERE queue LIKE '%.{family}' AND received_at >= {window}) AS quarantined) AS w"""


def quarantine_suite(family: str, raw_table: str) -> TableSuite:
    """The quarantine-rate check of one queue, attached to the raw table it feeds."""
    qs = get_quality_settings()
    return TableSuite(
        name=f"{raw_table}.quarantine_rate",
        asset_key=tuple(raw_table.split(".")),
        table=raw_table,
        key_columns=("queue_family", "accepted", "quarantined"),
        query=quarantine_rate_query(family, raw_table, qs.quarantine_window_hours),
        rules=(
            Rule(
                "quarantine_rate",
                f"Share of the {family} queue's messages quarantined over the last "
                f"{qs.quarantine_window_hours:g} h stays at or below {qs.quarantine_max_pct:g}%.",
                (_in_range("quarantine_pct", 0, qs.quarantine_max_pct),),
                blocking=False,
            ),
        ),
    )


RAW_QUEUES = RAW_TABLE_OF_QUEUE


AUDITED: dict[str, AuditedTable] = {
    t.name: t
    for t in (
        AuditedTable("fact_flight", fact_flight, "flight_key", "flight_date"),
        AuditedTable("flight_passenger_load", flight_passenger_load, "flight_key", "flight_date"),
        AuditedTable("aircraft_position_latest", aircraft_position_latest, "tail_number"),
    )
}
"""The curated tables published through the audit (write-audit-publish), by table name: their
suite, key and date column. Their SQL writes staging.<name>; the audit publishes curated.<name>."""


def all_suites() -> list[TableSuite]:
    """Every suite, upstream first."""
    return [
        *(quarantine_suite(family, table) for family, table in RAW_QUEUES.items()),
        dim_airport,
        fact_flight,
        flight_passenger_load,
        aircraft_position_latest,
        route_daily_performance,
        airport_daily_traffic,
    ]


def suite_by_name(name: str) -> TableSuite:
    for suite in all_suites():
        if suite.name == name:
            return suite
    raise KeyError(f"no suite named {name!r}")
