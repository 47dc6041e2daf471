"""`/api/v1/routes/performance`: the daily route performance mart."""

from __future__ import annotations

from apiflask import APIBlueprint
from flask import Response
from marshmallow import RAISE

from api_service import queries
from api_service.context import fetch_page, protect
from api_service.openapi import LIST_RESPONSES
from api_service.pagination import as_date, as_text
from api_service.schemas import RoutePerformance, RoutesQuery, envelope

bp = APIBlueprint("routes", __name__, url_prefix="/api/v1/routes", tag="Routes")
protect(bp, "routes:read")


@bp.get("/performance")
@bp.input(RoutesQuery, location="query", arg_name="args", unknown=RAISE)
@bp.output(envelope(RoutePerformance, many=True))
@bp.doc(responses=LIST_RESPONSES)
def route_performance(args: dict) -> Response:
    """List daily route performance

    Rows of `marts.route_daily_performance` (same column names) for flight dates in
    [date_from, date_to], ordered by flight_date, carrier, origin, destination.
    """
    return fetch_page(
        "routes",
        lambda after, limit: queries.route_performance(args, after, limit),
        args,
        lambda row: (row["flight_date"], row["carrier"], row["origin"], row["destination"]),
        (as_date, as_text, as_text, as_text),
        queries.ROUTE_COLUMNS,
    )
