"""`/api/v1/aircraft`: the latest known position of each aircraft."""

from __future__ import annotations

from apiflask import APIBlueprint
from flask import Response
from marshmallow import RAISE

from api_service import queries
from api_service.context import fetch_item, protect
from api_service.openapi import ITEM_RESPONSES
from api_service.schemas import AircraftPosition, FormatQuery, TailPath, envelope

bp = APIBlueprint("aircraft", __name__, url_prefix="/api/v1/aircraft", tag="Aircraft")
protect(bp, "aircraft:read")


@bp.get("/<tail_number>/position")
@bp.input(TailPath, location="path", arg_name="path")
@bp.input(FormatQuery, location="query", arg_name="args", unknown=RAISE)
@bp.output(envelope(AircraftPosition, many=False))
@bp.doc(responses=ITEM_RESPONSES)
def aircraft_position(tail_number: str, path: dict, args: dict) -> Response:
    """Get an aircraft's latest position

    The latest position report of the aircraft (`curated.aircraft_position_latest`), with the
    flight it was flying when a report named one.
    """
    tail = path["tail_number"]
    return fetch_item(
        queries.aircraft_position(tail),
        queries.POSITION_COLUMNS,
        args.get("format"),
        f"position of aircraft {tail}",
    )
