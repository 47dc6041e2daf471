"""Keyset pagination cursors: opaque to clients, signed, bound to one list endpoint.

A cursor holds the sort key of the last row of a page. The next page is `WHERE (sort key) >
(cursor)`, which an index answers directly however deep the client pages, and rows inserted
meanwhile never shift a page the way OFFSET would. The HMAC stops clients from forging cursors
and a cursor of one endpoint from being replayed on another; anything that does not verify is a
client error (400), never a server error.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
from collections.abc import Callable, Sequence
from typing import Any

import orjson

MAX_CURSOR_LENGTH = 512
_SIG_BYTES = 12


class CursorError(ValueError):
    """The cursor is malformed, forged, or belongs to another endpoint."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(secret: str, kind: str, payload: bytes) -> bytes:
    mac = hmac.new(secret.encode(), kind.encode() + b"\x00" + payload, hashlib.sha256)
    return mac.digest()[:_SIG_BYTES]


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def encode_cursor(secret: str, kind: str, values: Sequence[Any]) -> str:
    """The cursor that resumes after the row whose sort key is `values`."""
    payload = orjson.dumps([_plain(v) for v in values])
    return f"{_b64(payload)}.{_b64(_sign(secret, kind, payload))}"


def decode_cursor(
    secret: str, kind: str, cursor: str, parsers: Sequence[Callable[[Any], Any]]
) -> tuple[Any, ...]:
    """The sort key a cursor holds, each part converted by its parser; `CursorError` otherwise."""
    if not cursor or len(cursor) > MAX_CURSOR_LENGTH or cursor.count(".") != 1:
        raise CursorError("cursor is not one this API issued")
    body, sig = cursor.split(".")
    try:
        payload, given = _unb64(body), _unb64(sig)
    except (binascii.Error, ValueError) as exc:
        raise CursorError("cursor is not one this API issued") from exc
    if not hmac.compare_digest(given, _sign(secret, kind, payload)):
        raise CursorError("cursor is not valid for this endpoint (or was altered)")
    try:
        values = orjson.loads(payload)
        if not isinstance(values, list) or len(values) != len(parsers):
            raise ValueError("wrong shape")
        return tuple(parse(v) for parse, v in zip(parsers, values, strict=True))
    except (ValueError, TypeError) as exc:
        raise CursorError("cursor is not one this API issued") from exc


def as_date(value: Any) -> dt.date:
    if not isinstance(value, str):
        raise TypeError("date expected")
    return dt.date.fromisoformat(value)


def as_datetime(value: Any) -> dt.datetime:
    if not isinstance(value, str):
        raise TypeError("timestamp expected")
    parsed = dt.datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError("timestamp without offset")
    return parsed


def as_text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("text expected")
    return value


def as_int(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError("integer expected")
    return value


def page(
    rows: list[dict[str, Any]], limit: int, make_cursor: Callable[[dict[str, Any]], str]
) -> tuple[list[dict[str, Any]], str | None]:
    """Split `limit + 1` fetched rows into the page and the cursor of the next one (or None)."""
    if len(rows) > limit:
        rows = rows[:limit]
        return rows, make_cursor(rows[-1])
    return rows, None
