"""`/api/v1/flights`: curated flights, one flight with its passenger load, and its event history."""

from __future__ import annotations

from apiflask import APIBlueprint, abort
from flask import Response
from marshmallow import RAISE

from api_service import queries
from api_service.context import fetch_item, fetch_page, protect, services
from api_service.openapi import ITEM_RESPONSES, LIST_OF_ITEM_RESPONSES, LIST_RESPONSES
from api_service.pagination import as_date, as_int, as_text
from api_service.schemas import (
    Flight,
    FlightDetail,
    FlightEvent,
    FlightKeyPath,
    FlightsQuery,
    FormatQuery,
    PageQuery,
    envelope,
)

bp = APIBlueprint("flights", __name__, url_prefix="/api/v1/flights", tag="Flights")
protect(bp, "flights:read")


@bp.get("")
@bp.input(FlightsQuery, location="query", arg_name="args", unknown=RAISE)
@bp.output(envelope(Flight, many=True))
@bp.doc(responses=LIST_RESPONSES)
def list_flights(args: dict) -> Response:
    """List flights

    Flights of `curated.fact_flight` matching every filter given, ordered by flight_date then
    flight_key. Page with `cursor`.
    """
    return fetch_page(
        "flights",
        lambda after, limit: queries.flights(args, after, limit),
        args,
        lambda row: (row["flight_date"], row["flight_key"]),
        (as_date, as_text),
        queries.FLIGHT_COLUMNS,
    )


@bp.get("/<flight_key>")
@bp.input(FlightKeyPath, location="path", arg_name="path")
@bp.input(FormatQuery, location="query", arg_name="args", unknown=RAISE)
@bp.output(envelope(FlightDetail, many=False))
@bp.doc(responses=ITEM_RESPONSES)
def get_flight(flight_key: str, path: dict, args: dict) -> Response:
    """Get one flight

    The flight's curated state with its passenger counts and load factor (null until a passenger
    event for it arrived).
    """
    return fetch_item(
        queries.flight(path["flight_key"]),
        queries.FLIGHT_DETAIL_COLUMNS,
        args.get("format"),
        f"flight {path['flight_key']}",
    )


@bp.get("/<flight_key>/events")
@bp.input(FlightKeyPath, location="path", arg_name="path")
@bp.input(PageQuery, location="query", arg_name="args", unknown=RAISE)
@bp.output(envelope(FlightEvent, many=True))
@bp.doc(responses=LIST_OF_ITEM_RESPONSES)
def list_flight_events(flight_key: str, path: dict, args: dict) -> Response:
    """List a flight's status events

    Every status event of the flight in the order that decides its curated state (event_time,
    then message_id). Flight events carry no personal data.
    """
    key = path["flight_key"]
    if services().db.fetch_one(*queries.flight_exists(key)) is None:
        abort(404, f"flight {key} not found")
    return fetch_page(
        "flight_events",
        lambda after, limit: queries.flight_events(key, after, limit),
        args,
        lambda row: (row["event_seq"],),
        (as_int,),
        queries.EVENT_COLUMNS,
    )
