"""Validate raw message bytes against the event contract.

JSON Schema (compiled once by jsonschema-rs, ~5 us a message) checks shape, ranges and formats; a few semantic checks the
schema language cannot express follow (real calendar dates, timestamps Postgres accepts, NUL
characters jsonb rejects). Each failure yields a short reason that names the offending field, which
is what lands in `raw.quarantine.reason`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache
from importlib import resources
from typing import Any

import jsonschema_rs
import orjson

EVENT_TYPES: tuple[str, ...] = ("flight_status", "passenger_event", "position_report")
SUPPORTED_VERSIONS: tuple[int, ...] = (1,)
ENVELOPE_FIELDS = (
    "message_id",
    "schema_version",
    "event_type",
    "event_time",
    "source_system",
    "payload",
)
TIMESTAMP_FIELDS: dict[str, tuple[str, ...]] = {
    "flight_status": (
        "scheduled_departure",
        "scheduled_arrival",
        "actual_departure",
        "actual_arrival",
    ),
    "passenger_event": (),
    "position_report": (),
}
INTEGER_FIELDS: dict[str, tuple[str, ...]] = {
    "flight_status": ("flight_number", "seat_capacity"),
    "passenger_event": ("flight_number",),
    "position_report": ("flight_number",),
}
# Postgres accepts offsets below 16 h; years are bounded so every reader (Python, pandas) copes
MAX_UTC_OFFSET = timedelta(hours=16)
MIN_YEAR, MAX_YEAR = 1970, 2100
MAX_REASON_CHARS = 500


@dataclass(frozen=True, slots=True)
class ValidEvent:
    """A message that satisfies the contract; `doc` is the parsed JSON object and `text` the
    UTF-8 text it was parsed from (when it came from bytes), so writers need not decode again."""

    doc: dict[str, Any]
    text: str | None = None

    @property
    def message_id(self) -> str:
        return self.doc["message_id"]

    @property
    def event_type(self) -> str:
        return self.doc["event_type"]


@dataclass(frozen=True, slots=True)
class InvalidEvent:
    """A message that breaks the contract, with a human-readable reason."""

    reason: str
    message_id: str | None = None


def load_schema(event_type: str, version: int = 1) -> dict[str, Any]:
    """The JSON Schema document of one event type and contract version."""
    path = (
        resources.files("latam_dagster.contracts")
        / "schemas"
        / f"v{version}"
        / f"{event_type}.json"
    )
    return json.loads(path.read_text(encoding="utf-8"))


@cache
def _compiled(event_type: str, version: int):
    return jsonschema_rs.validator_for(load_schema(event_type, version), validate_formats=True)


def _parse_ts(value: str) -> datetime:
    # RFC 3339 allows a lower-case 't'/'z'; Python 3.11's parser wants upper case
    ts = datetime.fromisoformat(value.upper())
    offset = ts.utcoffset()
    if offset is None:
        raise ValueError("timestamp has no UTC offset")
    if abs(offset) >= MAX_UTC_OFFSET:
        raise ValueError(f"UTC offset {offset} out of range (at most +/-15:59)")
    if not MIN_YEAR <= ts.year <= MAX_YEAR:
        raise ValueError(f"year {ts.year} outside {MIN_YEAR}..{MAX_YEAR}")
    return ts


def _check_integers(event_type: str, payload: dict[str, Any]) -> str | None:
    # JSON Schema counts 800.0 as an integer; the warehouse keys and casts need a real one
    for name in INTEGER_FIELDS[event_type]:
        value = payload.get(name)
        if value is not None and type(value) is not int:
            return f"payload/{name}: {value!r} must be written as an integer"
    return None


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def _fail(reason: str, doc: Any = None) -> InvalidEvent:
    mid = doc.get("message_id") if isinstance(doc, dict) else None
    return InvalidEvent(reason[:MAX_REASON_CHARS], mid if isinstance(mid, str) else None)


def validate_event(doc: Any, may_hold_nul: bool = True) -> ValidEvent | InvalidEvent:
    """Check a parsed JSON value against the contract version it declares.

    `may_hold_nul=False` skips the NUL scan when the caller saw no `\\u0000` escape in the text.
    """
    if not isinstance(doc, dict):
        return _fail(f"JSON value is not an object (got {type(doc).__name__})")
    missing = [f for f in ENVELOPE_FIELDS if f not in doc]
    if missing:
        return _fail(f"missing envelope field(s): {', '.join(missing)}", doc)
    version = doc["schema_version"]
    if isinstance(version, bool) or not isinstance(version, int):
        return _fail(f"schema_version must be an integer (got {version!r})", doc)
    if version not in SUPPORTED_VERSIONS:
        return _fail(f"unsupported schema_version {version} (supported: {SUPPORTED_VERSIONS})", doc)
    event_type = doc["event_type"]
    if event_type not in EVENT_TYPES:
        return _fail(f"unknown event_type {event_type!r} (known: {', '.join(EVENT_TYPES)})", doc)
    validator = _compiled(event_type, version)
    if not validator.is_valid(doc):
        error = next(validator.iter_errors(doc))
        where = "/".join(str(p) for p in error.instance_path) or "(root)"
        return _fail(f"{event_type} v{version}: {where}: {error.message}", doc)
    bad_integer = _check_integers(event_type, doc["payload"])
    if bad_integer:
        return _fail(f"{event_type} v{version}: {bad_integer}", doc)
    try:
        _parse_ts(doc["event_time"])
        payload = doc["payload"]
        for name in TIMESTAMP_FIELDS[event_type]:
            if payload.get(name) is not None:
                _parse_ts(payload[name])
        if payload.get("flight_date") is not None:
            year = date.fromisoformat(payload["flight_date"]).year
            if not MIN_YEAR <= year <= MAX_YEAR:
                raise ValueError(f"flight_date year {year} outside {MIN_YEAR}..{MAX_YEAR}")
    except ValueError as exc:
        return _fail(f"{event_type} v{version}: bad date or timestamp: {exc}", doc)
    if may_hold_nul and _has_nul(doc):  # jsonb cannot store U+0000
        return _fail("NUL character (\\u0000) in a string value", doc)
    return ValidEvent(doc)


def validate_body(body: bytes, max_bytes: int) -> ValidEvent | InvalidEvent:
    """Validate one message body as it came off the queue."""
    if not body:
        return InvalidEvent("empty body")
    if len(body) > max_bytes:
        return InvalidEvent(f"body too large: {len(body)} bytes > limit {max_bytes}")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return InvalidEvent(f"body is not UTF-8: {exc}")
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        return InvalidEvent(f"body is not JSON: {exc}")
    outcome = validate_event(doc, may_hold_nul="\\u0000" in text)
    return ValidEvent(doc, text) if isinstance(outcome, ValidEvent) else outcome
