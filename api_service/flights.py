"""`/api/v1/flights`: curated flights, one flight with its passenger load, and its event history."""

from __future__ import annotations

from functools import partial

from apiflask import APIBlueprint, abort
from flask import Response

from api_service import queries
from api_service.context import fetch_item, fetch_page, protect, services
from api_service.endpoints import item_route, list_route, listing
from api_service.pagination import as_date, as_int, as_text
from api_service.schemas import (
    Flight,
    FlightDetail,
    FlightEvent,
    FlightKeyPath,
    FlightsQuery,
    PageQuery,
)

bp = APIBlueprint("flights", __name__, url_prefix="/api/v1/flights", tag="Flights")
protect(bp, "flights:read")
FLIGHTS = listing("flights", queries.FLIGHT_COLUMNS, flight_date=as_date, flight_key=as_text)
EVENTS = listing("flight_events", queries.EVENT_COLUMNS, event_seq=as_int)


@list_route(bp, "", FlightsQuery, Flight)
def list_flights(args: dict) -> Response:
    """List flights

    Flights of `curated.fact_flight` matching every filter given, ordered by flight_date then
    flight_key. Page with `cursor`.

    Every page is read from an index in this order: `flight_date`, `origin`, `destination` and
    `carrier` each lead one, so a page reads only the flights of that day, airport or carrier.
    No index leads with `status`: it must come with `flight_date`, `origin` or `destination`,
    which bound the flights it is checked against; `status` alone (or with only `carrier`) is a
    400 naming the filter to add.
    """
    return fetch_page(FLIGHTS, partial(queries.flights, args), args)


@item_route(bp, "/<flight_key>", FlightDetail, FlightKeyPath)
def get_flight(flight_key: str, path: dict, args: dict) -> Response:
    """Get one flight

    The flight's curated state with its passenger counts and load factor (null until a passenger
    event for it arrived).
    """
    key = path["flight_key"]
    return fetch_item(
        queries.flight(key), queries.FLIGHT_DETAIL_COLUMNS, args.get("format"), f"flight {key}"
    )


@list_route(bp, "/<flight_key>/events", PageQuery, FlightEvent, path=FlightKeyPath)
def list_flight_events(flight_key: str, path: dict, args: dict) -> Response:
    """List a flight's status events

    Every status event of the flight in the order that decides its curated state (event_time,
    then message_id). Flight events carry no personal data.
    """
    key = path["flight_key"]
    if services().db.fetch_one(*queries.flight_exists(key)) is None:
        abort(404, f"flight {key} not found")
    return fetch_page(EVENTS, partial(queries.flight_events, key), args)
