"""Request ids and one structured access line per request, for the Flask API.

`init_request_logging(app)` gives every request an id (the caller's `X-Request-ID` when it is
sane, else a new one), returns it in the response's `X-Request-ID`, binds it to every log record
written while the request is handled, and logs one JSON access line with route, status and
duration, so a slow or failing request can be found in Loki from the id a client reports. The
line also names the API key that made the request (its name, set in `g.api_key` by the API's
authentication; never the key) and the query string, so what one key read can be listed from the
logs alone (docs/security.md, incident runbook).
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from flask import Flask, Response, g, request

from latam_dagster.observability.logging import bind, unbind

HEADER = "X-Request-ID"
MAX_QUERY_CHARS = 512
_SANE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
access_log = logging.getLogger("latam.access")


def request_id_from(header: str | None) -> str:
    """The caller's id when it is safe to log and echo, else a new one."""
    if header and _SANE.match(header):
        return header
    return uuid.uuid4().hex


def init_request_logging(app: Flask) -> None:
    """Install the request-id and access-log hooks on `app`."""

    @app.before_request
    def _begin() -> None:
        g.request_id = request_id_from(request.headers.get(HEADER))
        g.request_log_token = bind(request_id=g.request_id)
        g.request_started = time.perf_counter()

    @app.after_request
    def _finish(response: Response) -> Response:
        rid = g.get("request_id")
        if rid:
            response.headers[HEADER] = rid
            rule = request.url_rule
            access_log.info(
                "%s %s %s",
                request.method,
                request.path,
                response.status_code,
                extra={
                    "request_id": rid,
                    "method": request.method,
                    "route": rule.rule if rule is not None else "<unmatched>",
                    "status": response.status_code,
                    "api_key": g.get("api_key"),
                    "query": request.query_string.decode("utf-8", "replace")[:MAX_QUERY_CHARS],
                    "duration_ms": round((time.perf_counter() - g.request_started) * 1000, 2),
                },
            )
        return response

    @app.teardown_request
    def _end(_exc: BaseException | None) -> None:
        token = g.pop("request_log_token", None)
        if token is not None:
            unbind(token)
