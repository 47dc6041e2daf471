"""Checks every request passes before validation: size, repetition and text encoding.

Schema validation checks each parameter's meaning; this rejects what no parameter may be: a query
string longer than any legitimate one, a parameter given twice (which value would count?), and
text that is not clean UTF-8 (undecodable bytes arrive as U+FFFD; NUL and other control
characters can never be part of a code, key or date). Each answer is a 400 problem document.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes

from flask import Flask, Response, request

from api_service.errors import problem

MAX_QUERY_BYTES = 2048
MAX_PATH_BYTES = 512
_BAD_TEXT = re.compile(r"[\x00-\x1f\x7f\ufffd]")
# a query string of plain printable ASCII without escapes needs no decoding checks
_PLAIN_QUERY = re.compile(rb"[\x21-\x7e]*")


def _bad_text(value: str) -> bool:
    return bool(_BAD_TEXT.search(value))


def _utf8(raw: bytes) -> str | None:
    """The percent-decoded text of a query component, or None when it is not UTF-8."""
    try:
        return unquote_to_bytes(raw.replace(b"+", b" ")).decode("utf-8")
    except UnicodeDecodeError:
        return None


def _undecodable_query(query: bytes) -> str | None:
    """Name of the first parameter whose name or value is not UTF-8 once decoded, if any."""
    for part in query.split(b"&"):
        raw_name, _, raw_value = part.partition(b"=")
        name = _utf8(raw_name)
        if name is None or _utf8(raw_value) is None:
            return name if name is not None else raw_name.decode("ascii", "replace")[:40]
    return None


def _undecodable_path(environ: dict) -> bool:
    try:
        environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return True
    return False


def init_request_guard(app: Flask) -> None:
    @app.before_request
    def _guard() -> Response | None:
        if len(request.query_string) > MAX_QUERY_BYTES:
            return problem(400, f"the query string is longer than {MAX_QUERY_BYTES} bytes")
        if len(request.path.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
            return problem(400, f"the path is longer than {MAX_PATH_BYTES} bytes")
        if _undecodable_path(request.environ) or _bad_text(request.path):
            return problem(400, "the path holds bytes that are not printable UTF-8 text")
        query = request.query_string
        if not query:
            return None
        plain = b"%" not in query and _PLAIN_QUERY.fullmatch(query) is not None
        bad_name = None if plain else _undecodable_query(query)
        if bad_name is not None:
            return problem(
                400,
                f"query parameter {bad_name!r} is not valid UTF-8 once percent-decoded",
                errors={"query": {bad_name: ["not valid UTF-8"]}},
            )
        for name, values in request.args.lists():
            if not plain and (_bad_text(name) or any(_bad_text(v) for v in values)):
                return problem(
                    400,
                    f"query parameter {name!r} is not printable UTF-8 text",
                    errors={"query": {name: ["not printable UTF-8 text"]}},
                )
            if len(values) > 1:
                return problem(
                    400,
                    f"query parameter {name!r} is given {len(values)} times; give it once",
                    errors={"query": {name: ["given more than once"]}},
                )
        return None
