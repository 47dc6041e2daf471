"""The daily marts: route performance and airport traffic, one partition per flight date."""

from latam_dagster.tables.limits import (
    DELAY_MAX,
    DELAY_MIN,
    MAX_LOAD_FACTOR,
    at_least,
    delays_plausible,
    in_range,
    known_airport,
)
from latam_dagster.tables.rules import Rule, gxe
from latam_dagster.tables.table import Table, columns

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


ROUTE_DAILY_PERFORMANCE = Table(
    "marts",
    "route_daily_performance",
    key=("flight_date", "carrier", "origin", "destination"),
    api_name="RoutePerformance",
    columns=columns(
        "flight_date:date carrier:text origin:text destination:text flights:int cancelled:int"
        " diverted:int arrived:int on_time_arrivals:int on_time_pct:float?"
        " avg_dep_delay_min:float? avg_arr_delay_min:float? p90_arr_delay_min:float?"
        " passengers_boarded:int avg_load_factor:float? refreshed_at:timestamp"
    ),
    date_column="flight_date",
    partitioned=True,
    references=("curated.fact_flight", "curated.flight_passenger_load"),
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
                in_range("flights", 1, None),
                in_range("cancelled", 0, None),
                in_range("diverted", 0, None),
                in_range("on_time_arrivals", 0, None),
                at_least("flights", "arrived"),
                at_least("arrived", "on_time_arrivals"),
                in_range("on_time_pct", 0, 100),
                in_range("avg_load_factor", 0, MAX_LOAD_FACTOR),
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

AIRPORT_DAILY_TRAFFIC = Table(
    "marts",
    "airport_daily_traffic",
    key=("flight_date", "airport"),
    api_name="AirportTraffic",
    columns=columns(
        "flight_date:date airport:text departures:int arrivals:int cancelled:int"
        " avg_dep_delay_min:float? avg_arr_delay_min:float? refreshed_at:timestamp"
    ),
    date_column="flight_date",
    partitioned=True,
    references=("curated.fact_flight", "curated.dim_airport"),
    rules=(
        Rule(
            "airport_traffic_keys_unique",
            "One row per flight date and airport, the airport known to curated.dim_airport.",
            (
                gxe.ExpectCompoundColumnsToBeUnique(column_list=["flight_date", "airport"]),
                gxe.ExpectColumnValuesToNotBeNull(column="airport"),
                known_airport("airport"),
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
                in_range("departures", 0, None),
                in_range("arrivals", 0, None),
                in_range("cancelled", 0, None),
            ),
        ),
        Rule(
            "airport_traffic_delays_plausible",
            f"Average delays between {DELAY_MIN} and {DELAY_MAX} minutes.",
            delays_plausible("avg_dep_delay_min", "avg_arr_delay_min"),
            blocking=False,
        ),
    ),
)
