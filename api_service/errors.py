"""Every error the API answers is an RFC 9457 problem document (`application/problem+json`).

Bad input is always a 4xx that says which parameter was wrong and why; a database that does not
answer is a 503; anything else is a 500 that is logged with its traceback but shows the client
nothing of the internals.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import orjson
from apiflask import APIFlask, HTTPError
from flask import Response, request

from api_service.db import DatabaseUnavailable
from api_service.pagination import CursorError

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("api_service")

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string", "description": "URI naming the kind of problem"},
        "title": {"type": "string", "description": "Short summary of the kind of problem"},
        "status": {"type": "integer", "description": "HTTP status code"},
        "detail": {"type": "string", "description": "What was wrong with this request"},
        "instance": {"type": "string", "description": "Path of the request"},
        "errors": {
            "type": "object",
            "description": "Per-location, per-parameter messages of a validation error",
            "additionalProperties": True,
        },
    },
}


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def problem(
    status: int,
    detail: str | None = None,
    errors: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """A problem+json response."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": _title(status),
        "status": status,
        "detail": detail or _title(status),
        "instance": request.path,
    }
    if errors:
        body["errors"] = errors
    response = Response(orjson.dumps(body), status=status, mimetype=PROBLEM_JSON)
    for name, value in (headers or {}).items():
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def _validation_detail(errors: dict[str, Any]) -> str:
    """'limit: Must be greater than or equal to 1 and less than or equal to 1000.; ...'"""
    parts = []
    for location, fields in errors.items():
        if not isinstance(fields, dict):
            parts.append(f"{location}: {fields}")
            continue
        for name, messages in fields.items():
            text = " ".join(messages) if isinstance(messages, list) else str(messages)
            where = "" if location == "query" else f" ({location})"
            parts.append(f"{name}{where}: {text}")
    return "; ".join(parts) or "invalid request"


_AUTH_DETAIL = {
    401: "a valid API key is required: send 'Authorization: Bearer <key>'",
    403: "this API key lacks the scope this resource needs",
}


def error_processor(error: HTTPError) -> Response:
    """apiflask's hook for HTTP errors, validation errors and auth errors."""
    status = error.status_code
    if isinstance(error.detail, dict) and error.detail:
        return problem(
            status, _validation_detail(error.detail), errors=error.detail, headers=error.headers
        )
    detail = error.message
    if status in _AUTH_DETAIL and detail in (None, "", _title(status)):
        detail = _AUTH_DETAIL[status]
    elif status == 404 and detail in (None, "", "Not Found"):
        detail = f"no resource at {request.path}"
    elif status == 405 and detail in (None, "", "Method Not Allowed"):
        detail = f"{request.method} is not allowed here; this API is read-only"
    return problem(status, detail, headers=error.headers)


def register_error_handlers(app: APIFlask) -> None:
    """Map every exception to a problem document."""
    app.error_processor(error_processor)

    @app.errorhandler(CursorError)
    def _bad_cursor(exc: CursorError) -> Response:
        return problem(400, f"cursor: {exc}", errors={"query": {"cursor": [str(exc)]}})

    @app.errorhandler(DatabaseUnavailable)
    def _no_database(exc: DatabaseUnavailable) -> Response:
        log.warning("database unavailable: %s", exc)
        return problem(
            503,
            "the warehouse is not available right now; retry shortly",
            headers={"Retry-After": "5"},
        )

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return problem(500, "internal error; it has been logged")
