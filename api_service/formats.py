"""JSON and CSV representations of the same rows, chosen by `?format=` or the Accept header.

JSON timestamps are RFC 3339 in UTC (`Z`): the pool's sessions run with TimeZone=UTC, so every
timestamptz arrives in UTC and orjson writes it natively. Numerics are JSON numbers. CSV is
rendered from the JSON values themselves, so both formats always carry the same data: nulls are
empty cells, booleans `true`/`false`, and numbers are written exactly as in the JSON.

CSV is opened in spreadsheets, which run a cell that starts with `=`, `+`, `-` or `@` as a
formula (and treat a leading tab or carriage return the same way): a text value from the data
could then compute, link or fetch anything in the reader's spreadsheet. Such text cells get a
leading `'`, which spreadsheets show as text and do not evaluate. Only text is escaped: a number
(a negative one starts with `-`) stays the number the JSON holds.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import orjson
from flask import Response, request

JSON = "application/json"
CSV = "text/csv"
_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC
# first characters that make a spreadsheet evaluate a cell
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def dumps(value: Any) -> bytes:
    """JSON bytes of API values (Decimal as number, datetimes as RFC 3339 UTC)."""
    return orjson.dumps(value, default=_default, option=_OPTIONS)


def wants_csv(format_arg: str | None) -> bool:
    """`?format=` wins; otherwise CSV only when the client prefers text/csv over JSON."""
    if format_arg:
        return format_arg == "csv"
    best = request.accept_mimetypes.best_match([JSON, CSV], default=JSON)
    return best == CSV


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return safe_text(value)
    return orjson.dumps(value).decode()


def safe_text(value: str) -> str:
    """A text cell no spreadsheet evaluates: a leading `'` before a formula's first character."""
    return "'" + value if value.startswith(FORMULA_START) else value


def to_csv(columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> str:
    """CSV with a header row; each cell is the JSON value of that field."""
    plain = orjson.loads(dumps(list(rows)))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in plain:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return out.getvalue()


def list_response(
    rows: list[dict[str, Any]],
    next_cursor: str | None,
    columns: Sequence[str],
    format_arg: str | None,
) -> Response:
    """A page: `{"data": [...], "next_cursor": ...}` or CSV with the cursor in headers."""
    if wants_csv(format_arg):
        response = Response(to_csv(columns, rows), mimetype=CSV)
        if next_cursor:
            response.headers["X-Next-Cursor"] = next_cursor
        return response
    return Response(dumps({"data": rows, "next_cursor": next_cursor}), mimetype=JSON)


def item_response(row: dict[str, Any], columns: Sequence[str], format_arg: str | None) -> Response:
    """One object: `{"data": {...}}` or a one-row CSV."""
    if wants_csv(format_arg):
        return Response(to_csv(columns, [row]), mimetype=CSV)
    return Response(dumps({"data": row}), mimetype=JSON)
