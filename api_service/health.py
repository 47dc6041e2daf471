"""Probes: `/healthz` (the process answers) and `/readyz` (the warehouse answers too)."""

from __future__ import annotations

from apiflask import APIBlueprint, Schema
from apiflask.fields import String
from flask import Response

from api_service import queries
from api_service.context import services
from api_service.db import DatabaseUnavailable
from api_service.errors import problem
from api_service.formats import dumps

bp = APIBlueprint("health", __name__, tag="Health")


class Status(Schema):
    status = String(required=True)


@bp.get("/healthz")
@bp.output(Status)
def healthz() -> Response:
    """Liveness

    The process is up; checks no dependency, so a slow database never gets the pod restarted.
    """
    return Response(dumps({"status": "ok"}), mimetype="application/json")


@bp.get("/readyz")
@bp.output(Status)
@bp.doc(responses={503: "The warehouse does not answer"})
def readyz() -> Response:
    """Readiness

    The warehouse answers a query as the API's role; 503 otherwise, so traffic goes elsewhere.
    """
    try:
        services().db.fetch_one(*queries.ping())
    except DatabaseUnavailable:
        return problem(503, "the warehouse does not answer")
    return Response(dumps({"status": "ready"}), mimetype="application/json")
