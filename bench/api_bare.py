"""The baseline of `bench/api`: a bare WSGI app that runs the API's SQL and nothing else.

Same queries (built by `api_service.queries`), same read-only role and session settings, same
JSON encoder and the same gunicorn configuration; no framework, no validation, no auth, no
metrics, no ETag. What the real API costs on top of this is what the benchmark reports.
"""

from __future__ import annotations

import datetime as dt
import threading
from urllib.parse import parse_qs

from api_service import queries
from api_service.config import get_api_config
from api_service.db import Database
from api_service.formats import dumps

_db: Database | None = None
_lock = threading.Lock()


def _database() -> Database:
    global _db
    if _db is None:
        with _lock:
            if _db is None:
                config = get_api_config()
                _db = Database(config.database_url, config.threads, config.statement_timeout_ms)
    return _db


def _args(environ: dict) -> dict:
    raw = parse_qs(environ.get("QUERY_STRING", ""))
    args: dict = {k: v[0] for k, v in raw.items()}
    for name in ("flight_date", "date_from", "date_to"):
        if name in args:
            args[name] = dt.date.fromisoformat(args[name])
    args["limit"] = int(args.get("limit", 100))
    return args


def bare_app(environ: dict, start_response) -> list[bytes]:
    """`/api/v1/flights` and `/api/v1/routes/performance` (first page) as plain WSGI."""
    path = environ.get("PATH_INFO", "")
    args = _args(environ)
    if path == "/api/v1/flights":
        sql, params = queries.flights(args, None, args["limit"])
    elif path == "/api/v1/routes/performance":
        sql, params = queries.route_performance(args, None, args["limit"])
    else:
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found"]
    rows = _database().fetch_all(sql, params)
    body = dumps({"data": rows[: args["limit"]], "next_cursor": None})
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]
