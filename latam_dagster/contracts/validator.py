"""Validate raw message bytes against the event contract.

JSON Schema (compiled once by jsonschema-rs, ~5 us a message) checks shape, ranges and formats; a few
semantic checks the schema language cannot express follow (real calendar dates, timestamps Postgres
accepts, NUL characters jsonb rejects). Each failure yields a short reason that names the JSON path
and the rule it broke, never the value: a value may be personal data (a passenger's name sent in
the wrong field), and the reason travels on to logs, the Dagster event log and dashboards. The
reason is what lands in `raw.quarantine.reason`; the body itself is kept byte for byte beside it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
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
_ENVELOPE_SET = frozenset(ENVELOPE_FIELDS)
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
# payload numbers the warehouse stores as double precision
FLOAT8_FIELDS: dict[str, tuple[str, ...]] = {
    "position_report": ("latitude", "longitude", "altitude_ft", "ground_speed_kt", "heading_deg"),
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
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
# a \u0000 escape, not an escaped backslash followed by "u0000"
_NUL_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")
# a JSON number (after ':', ',' or '[') with an exponent of three digits or more below zero
_FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")
# JSON Schema keywords whose schema value is a readable bound worth quoting in a reason
_BOUNDS = {
    "minimum": "at least",
    "maximum": "at most",
    "exclusiveMinimum": "above",
    "exclusiveMaximum": "below",
}
_LENGTHS = {"minLength": "at least", "maxLength": "at most"}


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


def allowed_values(event_type: str, field: str, version: int = 1) -> tuple[str, ...]:
    """The values the contract allows for a payload field (its `enum`, without null).

    The one list of, say, flight statuses: the quality rules and the API's OpenAPI document
    read it from here rather than repeating it.
    """
    payload = load_schema(event_type, version)["properties"]["payload"]["properties"]
    return tuple(v for v in payload[field]["enum"] if v is not None)


FLIGHT_STATUSES: tuple[str, ...] = allowed_values("flight_status", "status")


@cache
def _schema(event_type: str, version: int) -> dict[str, Any]:
    return load_schema(event_type, version)


@cache
def _compiled(event_type: str, version: int):
    return jsonschema_rs.validator_for(_schema(event_type, version), validate_formats=True)


# every supported (event_type, schema_version): one lookup on the drain's path
_VALIDATORS = {(t, v): _compiled(t, v) for t in EVENT_TYPES for v in SUPPORTED_VERSIONS}


def _schema_at(schema: Any, path: list) -> Any:
    for part in path:
        schema = schema[part] if isinstance(schema, dict | list) else None
    return schema


def _rule(error, schema: dict[str, Any]) -> str:
    """The rule a schema error broke, worded from the schema alone (never from the instance)."""
    path = list(error.schema_path)
    keyword = str(path[-1]) if path else "schema"
    expected = _schema_at(schema, path)
    if keyword == "required":
        missing = getattr(error.kind, "property", None)
        return f"required property {missing!r} is missing" if isinstance(missing, str) else keyword
    if keyword == "type":
        return f"must be of type {expected}"
    if keyword == "enum" and isinstance(expected, list):
        return "must be one of " + ", ".join(str(v) for v in expected)
    if keyword == "pattern":
        return f"must match {expected}"
    if keyword == "format":
        return f"must be a valid {expected}"
    if keyword in _BOUNDS:
        return f"must be {_BOUNDS[keyword]} {expected}"
    if keyword in _LENGTHS:
        return f"must be {_LENGTHS[keyword]} {expected} characters long"
    return f"breaks '{keyword}'"


def message_id_of(doc: Any) -> str | None:
    """The document's message_id when it is a well-formed UUID, else None: anything else in that
    field is only a value, and it is never copied out of the body."""
    mid = doc.get("message_id") if isinstance(doc, dict) else None
    return mid if isinstance(mid, str) and _UUID.match(mid) else None


def _timestamp_problem(value: str) -> str | None:
    """What makes an RFC 3339 timestamp unusable here, or None when it is fine."""
    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        # RFC 3339 allows a lower-case 't'/'z'; Python 3.11's parser wants upper case
        try:
            ts = datetime.fromisoformat(value.upper())
        except ValueError:
            return "not a valid RFC 3339 timestamp"
    offset = ts.utcoffset()
    if offset is None:
        return "timestamp has no UTC offset"
    if abs(offset) >= MAX_UTC_OFFSET:
        return "UTC offset out of range (at most +/-15:59)"
    if not MIN_YEAR <= ts.year <= MAX_YEAR:
        return f"year outside {MIN_YEAR}..{MAX_YEAR}"
    return None


def _check_integers(event_type: str, payload: dict[str, Any]) -> str | None:
    # JSON Schema counts 800.0 as an integer; the warehouse keys and casts need a real one
    for name in INTEGER_FIELDS[event_type]:
        value = payload.get(name)
        if value is not None and type(value) is not int:
            return f"payload/{name}: must be written as an integer"
    return None


def _nul_path(value: Any) -> str | None:
    """Where the first NUL character is, as a JSON path, or None. Iterative: an extra field may
    nest as deep as the JSON parser allows (1024 levels), deeper than Python's recursion limit.
    Keys that do not look like field names are shown as `*` (a key is chosen by the source and
    could hold anything), and so is a key that itself holds the NUL."""
    stack: list[tuple[Any, tuple[str, ...]]] = [(value, ())]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return _path_text(path)
        elif isinstance(item, dict):
            for k, v in item.items():
                if "\x00" in k:
                    return _path_text((*path, "*"))
                stack.append((v, (*path, k if _FIELD_NAME.match(k) else "*")))
        elif isinstance(item, list):
            stack.extend((v, (*path, str(i))) for i, v in enumerate(item))
    return None


def _path_text(path: tuple[str, ...], shown: int = 6) -> str:
    parts = list(path[:shown]) + (["…"] if len(path) > shown else [])
    return "/".join(parts) or "(root)"


def _fail(reason: str, doc: Any = None) -> InvalidEvent:
    return InvalidEvent(reason[:MAX_REASON_CHARS], message_id_of(doc))


def _underflow(event_type: str, payload: dict[str, Any], text: str) -> str | None:
    """The double-precision field whose number is too small for a double, if any: Python reads
    such a number (`1e-400`) as 0.0, and Postgres refuses it where it casts to float8."""
    for name in FLOAT8_FIELDS.get(event_type, ()):
        value = payload.get(name)
        if type(value) is float and value == 0.0:  # rare: only then look at the text
            match = re.search(rf'"{name}"\s*:\s*(-?\d+(?:\.\d+)?[eE][-+]?\d+)', text)
            if match and Decimal(match.group(1)) != 0:
                return f"payload/{name}"
    return None


def validate_event(
    doc: Any, may_hold_nul: bool = True, nul_in_text: bool = False
) -> ValidEvent | InvalidEvent:
    """Check a parsed JSON value against the contract version it declares.

    `may_hold_nul=False` skips the NUL scan when the caller saw no `\\u0000` escape in the text;
    `nul_in_text` says the text has one even if the parsed value does not (a key given twice
    keeps only its last value, but Postgres refuses the escape wherever it is).
    """
    return _problem(doc, may_hold_nul, nul_in_text) or ValidEvent(doc)


def _problem(doc: Any, may_hold_nul: bool, nul_in_text: bool) -> InvalidEvent | None:
    """Why `doc` breaks the contract, or None. The drain runs this for every message: the
    common case takes one dictionary lookup per rule and builds nothing."""
    if not isinstance(doc, dict):
        return _fail(f"JSON value is not an object (got {type(doc).__name__})")
    if not doc.keys() >= _ENVELOPE_SET:  # one set test on the hot path; the list on failure
        missing = [f for f in ENVELOPE_FIELDS if f not in doc]
        return _fail(f"missing envelope field(s): {', '.join(missing)}", doc)
    version = doc["schema_version"]
    event_type = doc["event_type"]
    # parsed JSON: a bool is the only int subclass it can hold; the key is hashable below
    validator = (
        _VALIDATORS.get((event_type, version))
        if type(version) is int and type(event_type) is str
        else None
    )
    if validator is None:
        if type(version) is not int:
            return _fail("schema_version: must be an integer", doc)
        if version not in SUPPORTED_VERSIONS:
            supported = ", ".join(map(str, SUPPORTED_VERSIONS))
            return _fail(f"schema_version: unsupported (supported: {supported})", doc)
        return _fail(f"unknown event_type (known: {', '.join(EVENT_TYPES)})", doc)
    try:
        error = None if validator.is_valid(doc) else next(validator.iter_errors(doc))
    except (ValueError, RecursionError) as exc:  # jsonschema-rs refuses values nested too deep
        reason = f"a value nests too deep to validate ({type(exc).__name__})"
        return _fail(f"{event_type} v{version}: {reason}", doc)
    if error is not None:
        # the path's names come from the schema (it has no free-form properties to report on)
        where = "/".join(str(p) for p in error.instance_path) or "(root)"
        rule = _rule(error, _schema(event_type, version))
        return _fail(f"{event_type} v{version}: {where}: {rule}", doc)
    payload = doc["payload"]
    bad_integer = _check_integers(event_type, payload)
    if bad_integer:
        return _fail(f"{event_type} v{version}: {bad_integer}", doc)
    if problem := _timestamp_problem(doc["event_time"]):
        return _fail(f"{event_type} v{version}: event_time: {problem}", doc)
    for name in TIMESTAMP_FIELDS[event_type]:
        value = payload.get(name)
        if value is not None and (problem := _timestamp_problem(value)):
            return _fail(f"{event_type} v{version}: payload/{name}: {problem}", doc)
    flight_date = payload.get("flight_date")
    if flight_date is not None:
        try:
            year = date.fromisoformat(flight_date).year
        except ValueError:
            return _fail(f"{event_type} v{version}: payload/flight_date: not a calendar date", doc)
        if not MIN_YEAR <= year <= MAX_YEAR:
            return _fail(
                f"{event_type} v{version}: payload/flight_date: year outside {MIN_YEAR}..{MAX_YEAR}",
                doc,
            )
    if may_hold_nul:  # jsonb cannot store U+0000
        where = _nul_path(doc) or ("(a key given twice)" if nul_in_text else None)
        if where is not None:
            return _fail(f"{event_type} v{version}: {where}: NUL character (\\u0000)", doc)
    return None


def validate_body(body: bytes, max_bytes: int) -> ValidEvent | InvalidEvent:
    """Validate one message body as it came off the queue."""
    if not body:
        return InvalidEvent("empty body")
    if len(body) > max_bytes:
        return InvalidEvent(f"body too large: {len(body)} bytes > limit {max_bytes}")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return InvalidEvent(f"body is not UTF-8: {exc.reason} at byte {exc.start}")
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        # orjson's messages name the syntax problem and its position, not the text around it
        return InvalidEvent(f"body is not JSON: {exc.msg} at char {exc.pos}")
    nul = "\\u0000" in text and _NUL_ESCAPE.search(text) is not None
    if invalid := _problem(doc, nul, nul):
        return invalid
    event_type = doc["event_type"]
    if event_type in FLOAT8_FIELDS and (where := _underflow(event_type, doc["payload"], text)):
        reason = f"{event_type} v1: {where}: underflows double precision (not 0, below 4.9e-324)"
        return InvalidEvent(reason, message_id_of(doc))
    return ValidEvent(doc, text)
