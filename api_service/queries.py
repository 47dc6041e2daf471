"""Every SQL statement the API runs. Values only ever travel as query parameters.

Statements are assembled from the fixed fragments below (a filter is present or not), never from
request text, and page through keyset conditions on the sort key of each list so every page is an
index range scan. Each list fetches `limit + 1` rows: the extra row says whether a next page exists.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

FLIGHT_COLUMNS = (
    "flight_key", "carrier", "flight_number", "flight_date", "origin", "destination", "status",
    "scheduled_departure", "scheduled_arrival", "actual_departure", "actual_arrival",
    "dep_delay_min", "arr_delay_min", "cancelled", "diverted", "arrived", "on_time",
    "tail_number", "seat_capacity", "distance_km",
    "first_event_time", "last_event_time", "event_count",
)  # fmt: skip
LOAD_COLUMNS = (
    "passengers_booked", "passengers_checked_in", "passengers_boarded", "passengers_cancelled",
    "load_factor",
)  # fmt: skip
FLIGHT_DETAIL_COLUMNS = FLIGHT_COLUMNS + LOAD_COLUMNS
EVENT_COLUMNS = (
    "flight_key", "event_seq", "event_time", "message_id", "source_system", "carrier",
    "flight_number", "flight_date", "origin", "destination", "status",
    "scheduled_departure", "scheduled_arrival", "actual_departure", "actual_arrival",
    "tail_number", "seat_capacity", "received_at",
)  # fmt: skip
ROUTE_COLUMNS = (
    "flight_date", "carrier", "origin", "destination", "flights", "cancelled", "diverted",
    "arrived", "on_time_arrivals", "on_time_pct", "avg_dep_delay_min", "avg_arr_delay_min",
    "p90_arr_delay_min", "passengers_boarded", "avg_load_factor", "refreshed_at",
)  # fmt: skip
AIRPORT_COLUMNS = (
    "iata", "icao", "name", "city", "subdivision", "country", "latitude", "longitude",
    "elevation_ft", "time_zone",
)  # fmt: skip
TRAFFIC_COLUMNS = (
    "flight_date", "airport", "departures", "arrivals", "cancelled",
    "avg_dep_delay_min", "avg_arr_delay_min", "refreshed_at",
)  # fmt: skip
POSITION_COLUMNS = (
    "tail_number", "latitude", "longitude", "altitude_ft", "ground_speed_kt", "heading_deg",
    "event_time", "message_id", "source_system", "flight_key",
)  # fmt: skip

Query = tuple[str, dict[str, Any]]


def _cols(columns: Sequence[str], alias: str | None = None) -> str:
    prefix = f"{alias}." if alias else ""
    return ", ".join(prefix + c for c in columns)


def _where(conditions: list[str]) -> str:
    return ("WHERE " + " AND ".join(conditions)) if conditions else ""


# Filters a client may combine, as fixed SQL fragments keyed by parameter name.
_FLIGHT_FILTERS = {
    "flight_date": "flight_date = %(flight_date)s",
    "origin": "origin = %(origin)s",
    "destination": "destination = %(destination)s",
    "carrier": "carrier = %(carrier)s",
    "status": "status = %(status)s",
}
_ROUTE_FILTERS = {
    "date_from": "flight_date >= %(date_from)s",
    "date_to": "flight_date <= %(date_to)s",
    "origin": "origin = %(origin)s",
    "destination": "destination = %(destination)s",
    "carrier": "carrier = %(carrier)s",
}
_TRAFFIC_FILTERS = {
    "date_from": "flight_date >= %(date_from)s",
    "date_to": "flight_date <= %(date_to)s",
}


def _filters(fragments: dict[str, str], args: dict[str, Any]) -> tuple[list[str], dict]:
    conditions = [sql for name, sql in fragments.items() if args.get(name) is not None]
    params = {name: args[name] for name in fragments if args.get(name) is not None}
    return conditions, params


def flights(args: dict[str, Any], after: tuple | None, limit: int) -> Query:
    """Flights matching the filters, by (flight_date, flight_key)."""
    conditions, params = _filters(_FLIGHT_FILTERS, args)
    if after is not None:
        conditions.append("(flight_date, flight_key) > (%(after_date)s, %(after_key)s)")
        params["after_date"], params["after_key"] = after
    params["limit"] = limit + 1
    sql = (
        f"SELECT {_cols(FLIGHT_COLUMNS)} FROM curated.fact_flight {_where(conditions)} "
        "ORDER BY flight_date, flight_key LIMIT %(limit)s"
    )
    return sql, params


def flight(flight_key: str) -> Query:
    """One flight with its passenger load (null counts when no passenger event arrived yet)."""
    sql = (
        f"SELECT {_cols(FLIGHT_COLUMNS, 'f')}, {_cols(LOAD_COLUMNS, 'l')} "
        "FROM curated.fact_flight AS f "
        "LEFT JOIN curated.flight_passenger_load AS l ON l.flight_key = f.flight_key "
        "WHERE f.flight_key = %(flight_key)s"
    )
    return sql, {"flight_key": flight_key}


def flight_exists(flight_key: str) -> Query:
    return (
        "SELECT 1 AS found FROM curated.fact_flight WHERE flight_key = %(flight_key)s",
        {"flight_key": flight_key},
    )


def flight_events(flight_key: str, after: tuple | None, limit: int) -> Query:
    """A flight's status events in the order that decides its curated state."""
    params: dict[str, Any] = {"flight_key": flight_key, "limit": limit + 1}
    keyset = ""
    if after is not None:
        keyset = "AND event_seq > %(after_seq)s"
        params["after_seq"] = after[0]
    sql = (
        f"SELECT {_cols(EVENT_COLUMNS)} FROM curated.flight_event_history "
        f"WHERE flight_key = %(flight_key)s {keyset} ORDER BY event_seq LIMIT %(limit)s"
    )
    return sql, params


def route_performance(args: dict[str, Any], after: tuple | None, limit: int) -> Query:
    """Rows of marts.route_daily_performance in primary-key order."""
    conditions, params = _filters(_ROUTE_FILTERS, args)
    if after is not None:
        conditions.append(
            "(flight_date, carrier, origin, destination) > "
            "(%(after_date)s, %(after_carrier)s, %(after_origin)s, %(after_destination)s)"
        )
        (
            params["after_date"],
            params["after_carrier"],
            params["after_origin"],
            params["after_destination"],
        ) = after
    params["limit"] = limit + 1
    sql = (
        f"SELECT {_cols(ROUTE_COLUMNS)} FROM marts.route_daily_performance "
        f"{_where(conditions)} ORDER BY flight_date, carrier, origin, destination "
        "LIMIT %(limit)s"
    )
    return sql, params


def airport(iata: str) -> Query:
    return (
        f"SELECT {_cols(AIRPORT_COLUMNS)} FROM curated.dim_airport WHERE iata = %(iata)s",
        {"iata": iata},
    )


def airport_traffic(iata: str, args: dict[str, Any], after: tuple | None, limit: int) -> Query:
    """Daily traffic of one airport, by flight_date."""
    conditions, params = _filters(_TRAFFIC_FILTERS, args)
    conditions.insert(0, "airport = %(iata)s")
    params["iata"] = iata
    if after is not None:
        conditions.append("flight_date > %(after_date)s")
        params["after_date"] = after[0]
    params["limit"] = limit + 1
    sql = (
        f"SELECT {_cols(TRAFFIC_COLUMNS)} FROM marts.airport_daily_traffic "
        f"{_where(conditions)} ORDER BY flight_date LIMIT %(limit)s"
    )
    return sql, params


def aircraft_position(tail_number: str) -> Query:
    return (
        f"SELECT {_cols(POSITION_COLUMNS)} FROM curated.aircraft_position_latest "
        "WHERE tail_number = %(tail_number)s",
        {"tail_number": tail_number},
    )


def ping() -> Query:
    return "SELECT 1 AS ok", {}


QUALITY_COLUMNS = (
    "evaluation_id", "check_name", "asset_key", "table_name", "partition_key", "run_id",
    "evaluated_at", "success", "severity", "blocking", "description",
    "expectations_evaluated", "expectations_failed", "element_count", "unexpected_count",
    "unexpected_percent", "statistics", "failing_sample", "unexpected_index_query",
)  # fmt: skip


def quality_latest(args: dict[str, Any], after: tuple | None, limit: int) -> Query:
    """The newest evaluation of each check of each asset, by asset then check."""
    conditions: list[str] = []
    params: dict[str, Any] = {"limit": limit + 1}
    if args.get("asset") is not None:
        conditions.append("asset_key = %(asset)s")
        params["asset"] = args["asset"]
    if after is not None:
        conditions.append("(asset_key, check_name) > (%(after_asset)s, %(after_check)s)")
        params["after_asset"], params["after_check"] = after
    sql = (
        f"SELECT {_cols(QUALITY_COLUMNS)} FROM quality.latest_check_result "
        f"{_where(conditions)} ORDER BY asset_key, check_name LIMIT %(limit)s"
    )
    return sql, params


def quality_history(args: dict[str, Any], after: tuple | None, limit: int) -> Query:
    """Stored evaluations, newest first, optionally of one check and/or one asset."""
    conditions: list[str] = []
    params: dict[str, Any] = {"limit": limit + 1}
    if args.get("check") is not None:
        conditions.append("check_name = %(check)s")
        params["check"] = args["check"]
    if args.get("asset") is not None:
        conditions.append("asset_key = %(asset)s")
        params["asset"] = args["asset"]
    if after is not None:
        conditions.append("(evaluated_at, evaluation_id) < (%(after_time)s, %(after_id)s)")
        params["after_time"], params["after_id"] = after
    sql = (
        f"SELECT {_cols(QUALITY_COLUMNS)} FROM quality.check_evaluation {_where(conditions)} "
        "ORDER BY evaluated_at DESC, evaluation_id DESC LIMIT %(limit)s"
    )
    return sql, params


REJECT_COLUMNS = ("table_name", "rule", "rows", "oldest_first_seen", "newest_last_seen")


def quality_rejects(args: dict[str, Any], after: tuple | None, limit: int) -> Query:
    """Rows the audit holds back, counted per table and rule (quality.rejects)."""
    conditions: list[str] = []
    params: dict[str, Any] = {"limit": limit + 1}
    if args.get("table") is not None:
        conditions.append("table_name = %(table)s")
        params["table"] = args["table"]
    if after is not None:
        conditions.append("(table_name, rule) > (%(after_table)s, %(after_rule)s)")
        params["after_table"], params["after_rule"] = after
    sql = (
        "SELECT table_name, rule, count(*) AS rows, min(first_seen) AS oldest_first_seen, "
        f"max(last_seen) AS newest_last_seen FROM quality.rejects {_where(conditions)} "
        "GROUP BY table_name, rule ORDER BY table_name, rule LIMIT %(limit)s"
    )
    return sql, params
