"""`/api/v1/airports`: airport reference data and each airport's daily traffic."""

from __future__ import annotations

from apiflask import APIBlueprint, abort
from flask import Response
from marshmallow import RAISE

from api_service import queries
from api_service.context import fetch_item, fetch_page, protect, services
from api_service.openapi import ITEM_RESPONSES, LIST_OF_ITEM_RESPONSES
from api_service.pagination import as_date
from api_service.schemas import (
    Airport,
    AirportPath,
    AirportTraffic,
    FormatQuery,
    TrafficQuery,
    envelope,
)

bp = APIBlueprint("airports", __name__, url_prefix="/api/v1/airports", tag="Airports")
protect(bp, "airports:read")


@bp.get("/<iata>")
@bp.input(AirportPath, location="path", arg_name="path")
@bp.input(FormatQuery, location="query", arg_name="args", unknown=RAISE)
@bp.output(envelope(Airport, many=False))
@bp.doc(responses=ITEM_RESPONSES)
def get_airport(iata: str, path: dict, args: dict) -> Response:
    """Get one airport

    Reference data of `curated.dim_airport`.
    """
    code = path["iata"]
    return fetch_item(
        queries.airport(code), queries.AIRPORT_COLUMNS, args.get("format"), f"airport {code}"
    )


@bp.get("/<iata>/traffic")
@bp.input(AirportPath, location="path", arg_name="path")
@bp.input(TrafficQuery, location="query", arg_name="args", unknown=RAISE)
@bp.output(envelope(AirportTraffic, many=True))
@bp.doc(responses=LIST_OF_ITEM_RESPONSES)
def airport_traffic(iata: str, path: dict, args: dict) -> Response:
    """List an airport's daily traffic

    Rows of `marts.airport_daily_traffic` for the airport, by flight_date.
    """
    code = path["iata"]
    if services().db.fetch_one(*queries.airport(code)) is None:
        abort(404, f"airport {code} not found")
    return fetch_page(
        "airport_traffic",
        lambda after, limit: queries.airport_traffic(code, args, after, limit),
        args,
        lambda row: (row["flight_date"],),
        (as_date,),
        queries.TRAFFIC_COLUMNS,
    )
