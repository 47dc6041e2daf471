"""`/api/v1/routes/performance`: the daily route performance mart."""

from __future__ import annotations

from functools import partial

from apiflask import APIBlueprint
from flask import Response

from api_service import queries
from api_service.context import fetch_page, protect
from api_service.endpoints import list_route, listing
from api_service.pagination import as_date, as_text
from api_service.schemas import RoutePerformance, RoutesQuery

bp = APIBlueprint("routes", __name__, url_prefix="/api/v1/routes", tag="Routes")
protect(bp, "routes:read")
ROUTES = listing(
    "routes",
    queries.ROUTE_COLUMNS,
    flight_date=as_date,
    carrier=as_text,
    origin=as_text,
    destination=as_text,
)


@list_route(bp, "/performance", RoutesQuery, RoutePerformance)
def route_performance(args: dict) -> Response:
    """List daily route performance

    Rows of `marts.route_daily_performance` (same column names) for flight dates in
    [date_from, date_to], ordered by flight_date, carrier, origin, destination.

    Every combination of filters is read from an index in this order: the table's key leads
    with flight_date (the date range), and `origin`, `destination` and `carrier` each lead an
    index followed by flight_date and the rest of the key.
    """
    return fetch_page(ROUTES, partial(queries.route_performance, args), args)
