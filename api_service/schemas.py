"""Request and response schemas: they validate input and are the OpenAPI document.

Query schemas reject unknown parameters. Patterns and lengths mirror the event contract, so a
value that cannot name anything in the warehouse is a 400 before any SQL runs.
"""

from __future__ import annotations

import functools

from apiflask import Schema
from apiflask.fields import (
    Boolean,
    Date,
    DateTime,
    Float,
    Integer,
    List,
    Nested,
    Raw,
    String,
)
from apiflask.validators import Length, OneOf, Range, Regexp

from latam_dagster.contracts.validator import FLIGHT_STATUSES

MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
STATUSES = FLIGHT_STATUSES  # the contract's list, read from its JSON Schema
IATA_AIRPORT = r"^[A-Z]{3}$"
IATA_CARRIER = r"^[A-Z0-9]{2}$"
FLIGHT_KEY = r"^[A-Z0-9]{2}[0-9]{1,4}-[0-9]{4}-[0-9]{2}-[0-9]{2}-[A-Z]{3}$"
TAIL_NUMBER = r"^[A-Z0-9][A-Z0-9-]{0,15}$"
CHECK_NAME = r"^[A-Za-z0-9_]{1,200}$"
ASSET_KEY = r"^[A-Za-z0-9_]{1,100}(/[A-Za-z0-9_]{1,100}){0,4}$"
TABLE_NAME = r"^[a-z_]{1,63}\.[a-z_]{1,63}$"
CURSOR = r"^[A-Za-z0-9_-]{1,400}\.[A-Za-z0-9_-]{16}$"


def _airport(description: str) -> String:
    return String(
        validate=Regexp(IATA_AIRPORT, error="must be a 3-letter IATA airport code in capitals"),
        metadata={"description": description, "example": "SCL"},
    )


def _carrier() -> String:
    return String(
        validate=Regexp(IATA_CARRIER, error="must be a 2-character IATA carrier code"),
        metadata={"description": "IATA carrier code", "example": "LA"},
    )


class FormatMixin(Schema):
    format = String(
        validate=OneOf(["json", "csv"]),
        metadata={"description": "`csv` for CSV (same as `Accept: text/csv`); default JSON"},
    )


class PageMixin(FormatMixin):
    limit = Integer(
        load_default=DEFAULT_LIMIT,
        validate=Range(1, MAX_LIMIT),
        metadata={"description": f"rows per page, 1..{MAX_LIMIT}"},
    )
    cursor = String(
        validate=[
            Length(max=512),
            Regexp(CURSOR, error="is not a cursor this API issued"),
        ],
        metadata={
            "description": "`next_cursor` of the previous page of this list. Cursors are signed:"
            " any other value, even one of this form, is a 400"
        },
    )


class DateRangeMixin(Schema):
    # a range with date_from after date_to is empty, and answers an empty list
    date_from = Date(metadata={"description": "first flight_date (YYYY-MM-DD), inclusive"})
    date_to = Date(metadata={"description": "last flight_date (YYYY-MM-DD), inclusive"})


class FlightsQuery(PageMixin):
    flight_date = Date(metadata={"description": "scheduled departure date (YYYY-MM-DD)"})
    origin = _airport("origin airport")
    destination = _airport("destination airport")
    carrier = _carrier()
    status = String(validate=OneOf(STATUSES), metadata={"description": "current status"})


class RoutesQuery(PageMixin, DateRangeMixin):
    origin = _airport("origin airport")
    destination = _airport("destination airport")
    carrier = _carrier()


class TrafficQuery(PageMixin, DateRangeMixin):
    pass


class PageQuery(PageMixin):
    pass


class FormatQuery(FormatMixin):
    pass


class QualityQuery(PageMixin):
    asset = String(
        validate=Regexp(ASSET_KEY, error="is not an asset key like curated/fact_flight"),
        metadata={"description": "only checks of this asset, e.g. curated/fact_flight"},
    )


class QualityHistoryQuery(QualityQuery):
    check = String(
        validate=Regexp(CHECK_NAME, error="is not a check name"),
        metadata={"description": "only this check (check_name as in /api/v1/quality)"},
    )


class RejectsQuery(PageMixin):
    table = String(
        validate=Regexp(TABLE_NAME, error="is not a table name like curated.fact_flight"),
        metadata={"description": "only rows held back from this table, e.g. curated.fact_flight"},
    )


class FlightKeyPath(Schema):
    flight_key = String(
        required=True,
        validate=Regexp(FLIGHT_KEY, error="is not a flight key like LA800-2026-11-27-SCL"),
        metadata={"example": "LA800-2026-11-27-SCL"},
    )


class AirportPath(Schema):
    iata = String(
        required=True,
        validate=Regexp(IATA_AIRPORT, error="must be a 3-letter IATA airport code in capitals"),
        metadata={"example": "SCL"},
    )


class TailPath(Schema):
    tail_number = String(
        required=True,
        validate=Regexp(TAIL_NUMBER, error="is not a tail number like CC-BGA"),
        metadata={"example": "CC-BGA"},
    )


# --- responses ------------------------------------------------------------------------------


class Flight(Schema):
    flight_key = String(required=True)
    carrier = String(required=True)
    flight_number = Integer(required=True)
    flight_date = Date(required=True)
    origin = String(required=True)
    destination = String(required=True)
    status = String(required=True, validate=OneOf(STATUSES))
    scheduled_departure = DateTime(allow_none=True)
    scheduled_arrival = DateTime(allow_none=True)
    actual_departure = DateTime(allow_none=True)
    actual_arrival = DateTime(allow_none=True)
    dep_delay_min = Float(allow_none=True)
    arr_delay_min = Float(allow_none=True)
    cancelled = Boolean(required=True)
    diverted = Boolean(required=True)
    arrived = Boolean(required=True)
    on_time = Boolean(allow_none=True)
    tail_number = String(allow_none=True)
    seat_capacity = Integer(allow_none=True)
    distance_km = Float(allow_none=True)
    first_event_time = DateTime(required=True)
    last_event_time = DateTime(required=True)
    event_count = Integer(required=True)


class FlightDetail(Flight):
    passengers_booked = Integer(allow_none=True)
    passengers_checked_in = Integer(allow_none=True)
    passengers_boarded = Integer(allow_none=True)
    passengers_cancelled = Integer(allow_none=True)
    load_factor = Float(allow_none=True)


class FlightEvent(Schema):
    flight_key = String(required=True)
    event_seq = Integer(required=True)
    event_time = DateTime(required=True)
    message_id = String(required=True)
    source_system = String(required=True)
    carrier = String(required=True)
    flight_number = Integer(required=True)
    flight_date = Date(required=True)
    origin = String(required=True)
    destination = String(required=True)
    status = String(required=True)
    scheduled_departure = DateTime(allow_none=True)
    scheduled_arrival = DateTime(allow_none=True)
    actual_departure = DateTime(allow_none=True)
    actual_arrival = DateTime(allow_none=True)
    tail_number = String(allow_none=True)
    seat_capacity = Integer(allow_none=True)
    received_at = DateTime(required=True)


class RoutePerformance(Schema):
    flight_date = Date(required=True)
    carrier = String(required=True)
    origin = String(required=True)
    destination = String(required=True)
    flights = Integer(required=True)
    cancelled = Integer(required=True)
    diverted = Integer(required=True)
    arrived = Integer(required=True)
    on_time_arrivals = Integer(required=True)
    on_time_pct = Float(allow_none=True)
    avg_dep_delay_min = Float(allow_none=True)
    avg_arr_delay_min = Float(allow_none=True)
    p90_arr_delay_min = Float(allow_none=True)
    passengers_boarded = Integer(required=True)
    avg_load_factor = Float(allow_none=True)
    refreshed_at = DateTime(required=True)


class Airport(Schema):
    iata = String(required=True)
    icao = String(allow_none=True)
    name = String(required=True)
    city = String(allow_none=True)
    subdivision = String(allow_none=True)
    country = String(allow_none=True)
    latitude = Float(required=True)
    longitude = Float(required=True)
    elevation_ft = Integer(allow_none=True)
    time_zone = String(allow_none=True)


class AirportTraffic(Schema):
    flight_date = Date(required=True)
    airport = String(required=True)
    departures = Integer(required=True)
    arrivals = Integer(required=True)
    cancelled = Integer(required=True)
    avg_dep_delay_min = Float(allow_none=True)
    avg_arr_delay_min = Float(allow_none=True)
    refreshed_at = DateTime(required=True)


class AircraftPosition(Schema):
    tail_number = String(required=True)
    latitude = Float(required=True)
    longitude = Float(required=True)
    altitude_ft = Float(allow_none=True)
    ground_speed_kt = Float(allow_none=True)
    heading_deg = Float(allow_none=True)
    event_time = DateTime(required=True)
    message_id = String(required=True)
    source_system = String(required=True)
    flight_key = String(allow_none=True)


@functools.cache
def envelope(item: type[Schema], many: bool) -> type[Schema]:
    """`{"data": [...], "next_cursor": ...}` for lists, `{"data": {...}}` for single objects.

    One class per item and kind, so two lists of the same rows share one document schema.
    """
    attrs: dict[str, object] = {}
    if many:
        attrs["data"] = List(Nested(item), required=True)
        attrs["next_cursor"] = String(
            required=True,
            allow_none=True,
            metadata={"description": "pass as `cursor` for the next page; null on the last"},
        )
    else:
        attrs["data"] = Nested(item, required=True)
    suffix = "Page" if many else "Document"
    return type(f"{item.__name__}{suffix}", (Schema,), attrs)


class QualityResult(Schema):
    evaluation_id = Integer(required=True)
    check_name = String(required=True)
    asset_key = String(required=True)
    table_name = String(required=True)
    partition_key = String(allow_none=True)
    run_id = String(allow_none=True)
    evaluated_at = DateTime(required=True)
    success = Boolean(required=True)
    severity = String(required=True, validate=OneOf(["ERROR", "WARN"]))
    blocking = Boolean(required=True)
    description = String(required=True)
    expectations_evaluated = Integer(required=True)
    expectations_failed = Integer(required=True)
    element_count = Integer(allow_none=True)
    unexpected_count = Integer(required=True)
    unexpected_percent = Float(allow_none=True)
    statistics = Raw(required=True, metadata={"description": "observed values per expectation"})
    failing_sample = Raw(required=True, metadata={"description": "failing rows, by key"})
    unexpected_index_query = String(
        allow_none=True, metadata={"description": "SQL returning every failing row"}
    )


class RejectCount(Schema):
    table_name = String(required=True, metadata={"example": "curated.fact_flight"})
    rule = String(required=True, metadata={"example": "flight_airports_known"})
    rows = Integer(required=True, metadata={"description": "rows held back by this rule now"})
    oldest_first_seen = DateTime(
        required=True, metadata={"description": "when the longest-waiting row was first held"}
    )
    newest_last_seen = DateTime(
        required=True, metadata={"description": "when a row was last audited and still failed"}
    )
