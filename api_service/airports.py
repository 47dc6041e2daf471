"""`/api/v1/airports/<iata>/traffic`: each airport's daily traffic (the airport itself is a row
endpoint of the table registry, see rows.py)."""

from __future__ import annotations

from functools import partial

from apiflask import APIBlueprint, abort
from flask import Response

from api_service import queries
from api_service.context import fetch_page, protect, services
from api_service.endpoints import list_route, listing
from api_service.pagination import as_date
from api_service.schemas import (
    AirportPath,
    AirportTraffic,
    TrafficQuery,
)

bp = APIBlueprint("airports", __name__, url_prefix="/api/v1/airports", tag="Airports")
protect(bp, "airports:read")
TRAFFIC = listing("airport_traffic", queries.TRAFFIC_COLUMNS, flight_date=as_date)


@list_route(bp, "/<iata>/traffic", TrafficQuery, AirportTraffic, path=AirportPath)
def airport_traffic(iata: str, path: dict, args: dict) -> Response:
    """List an airport's daily traffic

    Rows of `marts.airport_daily_traffic` for the airport, by flight_date, read from the
    (airport, flight_date) index with or without the date range.
    """
    code = path["iata"]
    if services().db.fetch_one(*queries.airport(code)) is None:
        abort(404, f"airport {code} not found")
    return fetch_page(TRAFFIC, partial(queries.airport_traffic, code, args), args)
