"""Hypothesis strategies for the drain fuzz test: lists of AMQP messages, hostile and good.

A generated message is a `Msg`: the body bytes, the routing key as bytes, the AMQP basic
properties and the headers, exactly as they are published. Bodies range from random bytes to
contract-valid events mutated field by field (types, NULs, lone-surrogate escapes, huge numbers,
nesting up to 2000 levels, raw control characters, duplicate keys, extra fields, unicode) or set
to an edge value (timestamps, dates, numbers at the limits of the validator or of Postgres), with
good events, exact re-sends and same-`message_id` conflicts mixed in. Routing keys, properties
and headers are hostile for part of the messages (non-UTF-8, NUL, 255 bytes, every header type
pika decodes, floats sent as AMQP doubles). JSON that orjson cannot
write (lone surrogates, huge integers, deep nesting) is spliced into the text through
placeholders. Every draw goes through hypothesis (no `uuid4`), so examples replay and shrink.
"""

from __future__ import annotations

import string
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
from hypothesis import strategies as st

from latam_dagster.ingest.drain import DrainConfig
from latam_dagster.ingest.topology import ROUTING_PREFIX
from tests.integration.ingest_helpers import MAKERS

# what `Publisher` sends: a message with `properties=None` is published with these
STANDARD_PROPERTIES: dict[str, Any] = {"delivery_mode": 2, "content_type": "application/json"}
SHORTSTR_PROPERTIES = (
    "content_type",
    "content_encoding",
    "message_id",
    "correlation_id",
    "type",
    "app_id",
    "reply_to",
    "cluster_id",
)
INT64 = (-(2**63), 2**63 - 1)
INT32 = (-(2**31), 2**31 - 1)
MAX_BYTES = DrainConfig().max_message_bytes


@dataclass(frozen=True)
class Msg:
    """One message as published: `properties=None` means the standard persistent JSON ones."""

    body: bytes
    routing_key: bytes
    properties: dict[str, Any] | None = None
    headers: dict[Any, Any] | None = None
    note: str = field(default="", compare=False)

    def short(self) -> str:
        """A one-line description for hypothesis notes and failure messages."""
        props = "std" if self.properties is None else sorted(self.properties)
        head = self.body[:300] + (b"..." if len(self.body) > 300 else b"")
        return (
            f"{self.note or '?'}: rk={self.routing_key!r} props={props} "
            f"headers={self.headers!r:.120} body[{len(self.body)}]={head!r}"
        )


# --- JSON text with pieces orjson cannot write ---------------------------------------------------


class RawJson:
    """A JSON fragment spliced verbatim into the body text (it may be invalid JSON on purpose)."""

    def __init__(self, text: bytes, what: str):
        self.text, self.what = text, what

    def __repr__(self) -> str:
        return f"RawJson({self.what})"


def render(doc: Any) -> bytes:
    """orjson text of `doc`, with every `RawJson` (as a value, at any depth) spliced in."""
    fragments: list[bytes] = []

    def swap(value: Any) -> Any:
        if isinstance(value, RawJson):
            fragments.append(value.text)
            return f"\u2063fuzzraw{len(fragments) - 1}\u2063"
        if isinstance(value, dict):
            return {k: swap(v) for k, v in value.items()}
        if isinstance(value, list):
            return [swap(v) for v in value]
        return value

    text = orjson.dumps(swap(doc))
    for i, fragment in enumerate(fragments):
        text = text.replace(f'"\u2063fuzzraw{i}\u2063"'.encode(), fragment, 1)
    return text


def nested(depth: int, shape: str, nul_each_level: bool) -> bytes:
    """`depth` levels of arrays or objects; with `nul_each_level`, every level also holds a
    string with a NUL after its child (so a scan meets the NULs only on the way back up)."""
    if shape == "array":
        opener, closer = (b"[", b',"\\u0000"]') if nul_each_level else (b"[", b"]")
        return opener * depth + b"1" + closer * depth
    opener = b'{"d":'
    closer = b',"n":"\\u0000"}' if nul_each_level else b"}"
    return opener * depth + b"1" + closer * depth


# --- small value strategies ----------------------------------------------------------------------

ints64 = st.one_of(st.sampled_from([0, -1, 1, *INT64, 2**31, -(2**31) - 1]), st.integers(*INT64))
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    ints64,
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
)


def _json_containers(children: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=10), children, max_size=4)
    )


json_values = st.recursive(json_scalars, _json_containers, max_leaves=10)

raw_fragments = st.one_of(
    # lone surrogates (invalid), a valid pair, and escaped control characters (valid)
    st.sampled_from(
        [
            RawJson(b'"\\ud800"', "lone high surrogate"),
            RawJson(b'"x\\udfff"', "lone low surrogate"),
            RawJson(b'"\\ud83d\\u0041"', "high surrogate then a letter"),
            RawJson(b'"\\ud83d\\ude00"', "surrogate pair"),
            RawJson(b'"\\u0000"', "escaped NUL"),
            RawJson(b'"\\\\u0000"', "escaped backslash then u0000 (no NUL)"),
            RawJson(b'"\\\\N"', "COPY's NULL marker"),
            RawJson(b'"\\u001f\\u007f\\u0085"', "escaped control chars"),
            RawJson(b'"a\x01b"', "raw control char in a string"),
            RawJson(b'"a\nb"', "raw newline in a string"),
            RawJson(b'"tab\there"', "raw tab in a string"),
            RawJson(b"1e400", "float overflow"),
            RawJson(b"-1e400", "negative float overflow"),
            RawJson(b"1e-400", "float underflow"),
            RawJson(b"123456789012345678901234567890.5", "long decimal"),
            RawJson(b"NaN", "NaN literal"),
            RawJson(b"Infinity", "Infinity literal"),
            RawJson(b"0x10", "hex literal"),
            RawJson(b"01", "leading zero"),
            RawJson(b"'single'", "single quotes"),
        ]
    ),
    # integers beyond 64 bits (orjson reads them as floats, Postgres keeps them exactly)
    st.integers(min_value=2**63, max_value=10**40).map(
        lambda n: RawJson(str(n).encode(), "huge int")
    ),
    st.integers(min_value=-(10**40), max_value=-(2**63) - 1).map(
        lambda n: RawJson(str(n).encode(), "huge negative int")
    ),
    st.builds(
        lambda depth, shape, nul: RawJson(
            nested(depth, shape, nul),
            f"{shape} nested {depth} deep{' NUL each level' if nul else ''}",
        ),
        st.sampled_from([1, 2, 50, 400, 500, 990, 1023, 1024, 1025, 2000]),
        st.sampled_from(["object", "array"]),
        st.booleans(),
    ),
)


def with_nul(value: Any) -> st.SearchStrategy[str]:
    """The string form of `value` with a NUL inserted somewhere."""
    text = value if isinstance(value, str) else str(value)
    return st.integers(0, len(text)).map(lambda i: text[:i] + "\x00" + text[i:])


def utf8_short(max_bytes: int = 255, max_size: int = 40) -> st.SearchStrategy[str]:
    return st.text(max_size=max_size).filter(lambda s: len(s.encode()) <= max_bytes)


# --- AMQP envelope: routing keys, properties, headers --------------------------------------------

FAMILY_WORDS = (b"flight", b"passenger", b"position")


def routing_keys(default: bytes) -> st.SearchStrategy[bytes]:
    """`default` most of the time, else hostile keys: non-UTF-8, NUL, empty, 255 bytes, each
    family with odd suffixes, and keys no binding matches (they go to the unrouted queue)."""
    families = st.sampled_from(FAMILY_WORDS)
    return st.one_of(
        st.just(default),
        st.sampled_from(
            [
                b"",
                b"flight",
                b"passenger.",
                b"position.#",
                b"*",
                b".flight",
                b"FLIGHT.sabre",
                b"unknown.sabre",
                b"flight." + b"x" * 248,
                b"z" * 255,
                b"flight.\xff\xfe",
                b"\xff\xfe",
                b"flight.a\x00b",
                b"\x00",
                b"passenger.caf\xc3\xa9",
                b"position.\x1b[31mred",
                b"flight.\xed\xa0\x80",  # a surrogate encoded as UTF-8 (invalid UTF-8)
                b"flight.a\\b",  # a backslash, and COPY's NULL marker
                b"flight.\\N",
                b"\\N",
                b"flight.tab\there",
            ]
        ),
        st.builds(lambda word, rest: (word + b"." + rest)[:255], families, st.binary(max_size=40)),
        st.binary(max_size=255),
    )


shortstr = st.one_of(utf8_short(), st.binary(max_size=255))
properties = st.fixed_dictionaries(
    {},
    optional={
        **{name: shortstr for name in SHORTSTR_PROPERTIES},
        # the broker refuses a user_id other than the connection's user
        "user_id": st.sampled_from(["guest", b"guest"]),
        "timestamp": st.one_of(st.sampled_from([0, 2**64 - 1]), st.integers(0, 2**64 - 1)),
        # short expirations would be dead-lettered by the broker before the drain runs
        "expiration": st.integers(3_600_000, 2**32).map(str),
        "priority": st.integers(0, 255),
        "delivery_mode": st.sampled_from([1, 2]),
    },
)

header_keys = st.one_of(
    utf8_short(max_size=20),
    st.binary(max_size=20),
    st.sampled_from(
        ["x-death", "x-delivery-count", "x-first-death-queue", "message_id", "", "k\x00"]
    ),
)


class RawHeader(bytes):
    """A header value as another client may encode it, sent verbatim: the AMQP type tag and the
    value's bytes. pika encodes none of these itself; RabbitMQ stores and forwards them, and pika
    cannot decode some (a timestamp past year 9999)."""

    def __repr__(self) -> str:
        return f"RawHeader({bytes(self)!r})"


def _raw(tag: bytes, fmt: str) -> Callable[[Any], RawHeader]:
    return lambda *values: RawHeader(tag + struct.pack(fmt, *values))


# the field types RabbitMQ 3.10 accepts (it refuses 'U', NaN/infinite floats and unknown tags)
raw_header_values = st.one_of(
    st.one_of(st.sampled_from([2**64 - 1, 253402300800]), st.integers(0, 2**64 - 1)).map(
        _raw(b"T", ">Q")
    ),
    st.floats(width=32, allow_nan=False, allow_infinity=False).map(_raw(b"f", ">f")),
    st.integers(-128, 127).map(_raw(b"b", ">b")),
    st.integers(0, 255).map(_raw(b"B", ">B")),
    st.integers(0, 2**16 - 1).map(_raw(b"u", ">H")),
    st.integers(-(2**15), 2**15 - 1).map(_raw(b"s", ">h")),
    st.integers(0, 2**32 - 1).map(_raw(b"i", ">I")),
    st.integers(*INT64).map(_raw(b"L", ">q")),
    st.builds(_raw(b"D", ">Bi"), st.integers(0, 255), st.integers(*INT32)),
    st.binary(max_size=20).map(lambda b: RawHeader(b"S" + struct.pack(">I", len(b)) + b)),
)
header_scalars = st.one_of(
    raw_header_values,
    st.text(max_size=50),
    st.binary(max_size=50),
    ints64,
    # sent as AMQP doubles; pika delivers them as ints (1e300 becomes a 997-bit int)
    st.floats(allow_nan=False, allow_infinity=False),
    st.builds(
        lambda raw, places: Decimal(raw).scaleb(-places), st.integers(*INT32), st.integers(0, 20)
    ),
    st.booleans(),
    st.none(),
    st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9999, 12, 30)),
    st.datetimes(
        min_value=datetime(1970, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
    ),
)


def _header_containers(children: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(
        st.lists(children, max_size=4), st.dictionaries(header_keys, children, max_size=4)
    )


header_values = st.recursive(header_scalars, _header_containers, max_leaves=8)
headers = st.one_of(
    st.dictionaries(header_keys, header_values, max_size=6),
    st.sampled_from(
        [
            {"x-death": "not a list"},
            {"x-death": [{"count": -1, "queue": b"\xff"}]},
            {"x-delivery-count": "many"},
            {"x-first-death-queue": None},
        ]
    ),
)


@st.composite
def envelopes(draw, default_key: bytes):
    """(routing key, properties, headers): the standard envelope half of the time (and that is
    where shrinking goes), else each of the three hostile with even odds."""
    if draw(st.integers(0, 3)) < 2:
        return default_key, None, None
    key = draw(routing_keys(default_key)) if draw(st.booleans()) else default_key
    props = draw(properties) if draw(st.booleans()) else None
    hdrs = draw(headers) if draw(st.booleans()) else None
    return key, props, hdrs


# --- events ---------------------------------------------------------------------------------------

EVENT_TYPES = tuple(MAKERS)
CLEAN_KEYS = (b"flight.fuzz", b"passenger.fuzz", b"position.fuzz", b"unknown.fuzz")


def natural_key(event: dict) -> bytes:
    return f"{ROUTING_PREFIX[event['event_type']]}.{event['source_system']}".encode()


@st.composite
def good_events(draw, message_id: str | None = None) -> dict:
    """A contract-valid event of any type with drawn ids and, sometimes, unicode extras."""
    etype = draw(st.sampled_from(EVENT_TYPES))
    mid = message_id or str(draw(st.uuids()))
    payload: dict[str, Any] = {"flight_number": draw(st.integers(1, 9999))}
    if etype == "passenger_event":
        payload["passenger_ref"] = "PNR-" + draw(
            st.text(string.ascii_uppercase + string.digits, min_size=6, max_size=6)
        )
    extras = draw(
        st.dictionaries(
            st.text(max_size=10).filter(lambda k: "\x00" not in k),
            st.text(max_size=30).filter(lambda v: "\x00" not in v),
            max_size=2,
        )
    )
    if draw(st.booleans()):
        payload.update({f"x_{k}": v for k, v in extras.items()})
    event = MAKERS[etype](message_id=mid, payload=payload)
    if not draw(st.booleans()):
        event.update({f"note_{k}": v for k, v in extras.items()})
    return event


REMOVE = object()  # a mutation that deletes the field
MESSAGE_IDS = st.one_of(
    st.uuids().map(str),
    st.uuids().map(lambda u: str(u).upper()),
    st.uuids().map(lambda u: "{" + str(u) + "}"),
    st.uuids().map(lambda u: u.hex),
    st.uuids().flatmap(with_nul),
    st.sampled_from(["", "msg-1", "\x00", "00000000-0000-0000-0000-00000000000g", " " * 36]),
    st.text(max_size=40),
    json_scalars,
)


# values at the edges of what the validator and the warehouse each accept (they must agree)
TIMESTAMP_FIELDS = {
    "event_time",
    "scheduled_departure",
    "scheduled_arrival",
    "actual_departure",
    "actual_arrival",
}


def _rfc3339(ts: datetime, offset_minutes: int, digits: int) -> str:
    """`ts` written with `digits` fractional digits and a UTC offset of `offset_minutes`."""
    text = ts.strftime("%Y-%m-%dT%H:%M:%S")
    if digits:
        text += f".{ts.microsecond:06d}"[: digits + 1]
    if not offset_minutes:
        return text + "Z"
    sign = "+" if offset_minutes > 0 else "-"
    hours, minutes = divmod(abs(offset_minutes), 60)
    return f"{text}{sign}{hours:02d}:{minutes:02d}"


timestamp_edges = st.one_of(
    st.sampled_from(
        [
            "2026-11-27t10:15:00z",
            "2026-11-27T10:15:00.123456789Z",
            "2026-11-27T10:15:00+15:59",
            "2026-11-27T10:15:00-15:59",
            "2026-11-27T10:15:00+16:00",
            "2100-12-31T23:59:59-15:59",
            "1970-01-01T00:00:00+15:59",
            "1969-12-31T23:59:59Z",
            "2026-11-27T24:00:00Z",
            "2026-11-27T10:15:60Z",
            "2026-06-30T23:59:60Z",
            "2026-11-27 10:15:00Z",
            "2026-11-27T10:15Z",
            "2026-11-27T10:15:00+0300",
            "2026-11-27T10:15:00.Z",
            "+2026-11-27T10:15:00Z",
            "2026-11-27T10:15:00\u0000Z",
        ]
    ),
    st.builds(
        _rfc3339,
        st.datetimes(min_value=datetime(1969, 12, 30), max_value=datetime(2101, 1, 2)),
        st.integers(-16 * 60, 16 * 60),
        st.integers(0, 6),
    ),
)
date_edges = st.one_of(
    st.sampled_from(
        [
            "2024-02-29",
            "2026-02-29",
            "1970-01-01",
            "1969-12-31",
            "2100-12-31",
            "2101-01-01",
            "0001-01-01",
            "9999-12-31",
            "2026-1-1",
            "20261127",
            "2026-11-27T00:00:00Z",
        ]
    ),
    st.dates().map(str),
)
numeric_edges = st.sampled_from(
    [
        RawJson(b"1e-400", "underflow to 0.0"),
        RawJson(b"-1e-400", "negative underflow"),
        RawJson(b"5e-324", "smallest subnormal"),
        RawJson(b"2.2250738585072014e-308", "smallest normal"),
        RawJson(b"1.7976931348623157e308", "largest double"),
        RawJson(b"-0.0", "negative zero"),
        RawJson(b"-0", "integer negative zero"),
        RawJson(b"1E2", "exponent integer"),
        RawJson(b"800.0", "integral float"),
        RawJson(b"90.00000000000000000001", "just over 90 in decimal"),
        RawJson(b"89.99999999999999999999", "just under 90 in decimal"),
        RawJson(b"9999.0000000000000001", "rounds to 9999"),
        RawJson(b"18446744073709551615", "u64 max"),
        RawJson(b"-9223372036854775809", "below i64"),
        RawJson(b"2147483648", "over int4"),
        RawJson(b"32768", "over int2"),
    ]
)
NUMERIC_FIELDS = {
    "schema_version",
    "flight_number",
    "seat_capacity",
    "fare_amount",
    "latitude",
    "longitude",
    "altitude_ft",
    "ground_speed_kt",
    "heading_deg",
}


@st.composite
def mutations(draw, name: str) -> tuple[Any, str]:
    """A replacement value for field `name` of an event (or REMOVE) and its description."""
    kind = draw(
        st.sampled_from(
            ["edge", "value", "nul", "edge", "raw", "drop", "edge", "unicode", "message_id"]
        ),
    )
    if kind == "edge" and name in TIMESTAMP_FIELDS:
        return draw(timestamp_edges), "timestamp edge"
    if kind == "edge" and name == "flight_date":
        return draw(date_edges), "date edge"
    if kind == "edge" and name in NUMERIC_FIELDS:
        fragment = draw(numeric_edges)
        return fragment, fragment.what
    if kind == "value" or kind == "edge":
        return draw(json_values), "wrong value"
    if kind == "nul":
        return draw(with_nul(draw(st.text(max_size=12)))), "NUL in a string"
    if kind == "raw":
        fragment = draw(raw_fragments)
        return fragment, fragment.what
    if kind == "drop":
        return REMOVE, "field dropped"
    if kind == "unicode":
        return draw(st.text(min_size=1, max_size=30)), "unicode text"
    return draw(MESSAGE_IDS), "message_id-like value"


@st.composite
def edge_events(draw) -> tuple[bytes, bytes, str]:
    """A valid event with one timestamp, date or number at an edge of what the validator or the
    warehouse accepts: (body, natural routing key, note)."""
    event = draw(good_events())
    payload = event["payload"]
    fields = [("top", "event_time")] + [
        ("payload", k)
        for k in sorted(payload)
        if k in TIMESTAMP_FIELDS or k in NUMERIC_FIELDS or k == "flight_date"
    ]
    where, name = draw(st.sampled_from(fields))
    if name in TIMESTAMP_FIELDS:
        value, what = draw(timestamp_edges), "timestamp edge"
    elif name == "flight_date":
        value, what = draw(date_edges), "date edge"
    else:
        value = draw(numeric_edges)
        what = value.what
    (event if where == "top" else payload)[name] = value
    return render(event), natural_key(event), f"edge {where}.{name}: {what}"


@st.composite
def mutated_events(draw) -> tuple[bytes, bytes, str]:
    """A valid event with one to three places mutated: (body, natural routing key, note)."""
    event = draw(good_events())
    key = natural_key(event)
    notes = []
    for _ in range(draw(st.integers(1, 3))):
        payload = event.get("payload")
        places = [("top", k) for k in event] + [("top", "<new>")]
        if isinstance(payload, dict):  # twice: the payload is where types and ranges differ
            places += 2 * ([("payload", k) for k in payload] + [("payload", "<new>")])
        where, name = draw(st.sampled_from(places))
        target = event if where == "top" else payload
        if name == "<new>":
            name = draw(st.one_of(st.text(max_size=12), with_nul("extra")))
        value, what = draw(mutations(name))
        if value is REMOVE:
            target.pop(name, None)
        else:
            target[name] = value
        notes.append(f"{where}.{name!r}: {what}")
    body = render(event)
    if draw(st.integers(0, 9)) == 0:  # a duplicate key: the first or the last one wins
        dup = render({"message_id": draw(MESSAGE_IDS)})[1:-1]
        body = (
            b"{" + dup + b"," + body[1:] if draw(st.booleans()) else body[:-1] + b"," + dup + b"}"
        )
        notes.append("duplicate message_id key")
    return body, key, "mutated " + "; ".join(notes)


# --- bodies that are not events ---------------------------------------------------------------


@st.composite
def non_utf8_bodies(draw) -> bytes:
    body = orjson.dumps(draw(good_events()))
    bad = draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xc0\x80", b"\xf8\x88\x80"]))
    i = draw(st.integers(0, len(body)))
    return body[:i] + bad + body[i:]


def padded(event: dict, size: int) -> bytes:
    """`event` with a `pad` field that makes its body exactly `size` bytes."""
    bare = orjson.dumps({**event, "pad": ""})
    return orjson.dumps({**event, "pad": "x" * (size - len(bare))})


other_bodies = st.one_of(
    st.binary(max_size=64).map(lambda b: (b, "random bytes")),
    non_utf8_bodies().map(lambda b: (b, "event with invalid UTF-8")),
    json_values.map(lambda v: (orjson.dumps(v), "JSON of a wrong shape")),
    raw_fragments.map(lambda r: (r.text, f"bare {r.what}")),
    st.sampled_from(
        [
            (b"", "empty body"),
            (b"  \n", "whitespace body"),
            (b"\xef\xbb\xbf{}", "UTF-8 BOM"),
            (b"{}", "empty object"),
            (b'{"message_id": null}', "null message_id only"),
        ]
    ),
    # around the size limit: the last valid size, the first too large, and far too large
    st.builds(
        lambda event, size: (padded(event, size), f"event of {size} bytes"),
        good_events(),
        st.sampled_from([MAX_BYTES, MAX_BYTES + 1, 3 * MAX_BYTES]),
    ),
)


# --- whole message lists --------------------------------------------------------------------------

KINDS = ["good", "good", "mutated", "mutated", "edge", "other", "resend", "conflict"]


@dataclass(frozen=True)
class Resend:
    """Re-publish the `nth` good event before it (counting from the latest, wrapping around):
    exactly its body, or (a conflict) the same message_id, maybe in upper case, with another
    body of the same type."""

    nth: int
    routing_key: bytes | None = None  # None: the original's
    conflict: bool = False
    upper: bool = False
    flight_number: int = 1
    source: str = "sabre"


@st.composite
def message_specs(draw) -> Msg | tuple[dict, Msg] | Resend:
    """One element of a message list, drawn on its own so that shrinking can delete it: a
    message, a good event (kept for re-sends) or a re-send of an earlier good event."""
    kind = draw(st.sampled_from(KINDS))
    if kind == "good":
        event = draw(good_events())
        key, props, hdrs = draw(envelopes(natural_key(event)))
        return event, Msg(orjson.dumps(event), key, props, hdrs, "good event")
    if kind in ("mutated", "edge"):
        body, default, note = draw(mutated_events() if kind == "mutated" else edge_events())
        key, props, hdrs = draw(envelopes(default))
        return Msg(body, key, props, hdrs, note)
    if kind == "other":
        body, note = draw(other_bodies)
        key, props, hdrs = draw(envelopes(draw(st.sampled_from(CLEAN_KEYS))))
        return Msg(body, key, props, hdrs, note)
    nth = draw(st.integers(0, 10))
    if kind == "resend":
        return Resend(nth, draw(st.sampled_from([None, *CLEAN_KEYS])))
    return Resend(
        nth,
        conflict=True,
        upper=draw(st.booleans()),
        flight_number=draw(st.integers(1, 9999)),
        source=draw(st.sampled_from(["sabre", "amadeus", "adsb-feed"])),
    )


def resolve(specs: list) -> list[Msg]:
    """The messages of a list of specs; a re-send with no good event before it is dropped."""
    msgs: list[Msg] = []
    goods: list[tuple[dict, Msg]] = []
    for spec in specs:
        if isinstance(spec, Msg):
            msgs.append(spec)
        elif isinstance(spec, tuple):
            goods.append(spec)
            msgs.append(spec[1])
        elif goods:
            event, original = goods[-1 - spec.nth % len(goods)]
            if not spec.conflict:
                key = spec.routing_key or original.routing_key
                msgs.append(
                    Msg(original.body, key, original.properties, original.headers, "exact re-send")
                )
                continue
            mid = event["message_id"].upper() if spec.upper else event["message_id"]
            payload: dict[str, Any] = {"flight_number": spec.flight_number}
            if event["event_type"] == "passenger_event":
                payload["passenger_ref"] = "PNR-CONFLICT"
            other = MAKERS[event["event_type"]](
                message_id=mid, payload=payload, source_system=spec.source
            )
            msgs.append(Msg(orjson.dumps(other), natural_key(other), note=f"conflict on {mid}"))
    return msgs


def message_lists(min_size: int = 4, max_size: int = 16) -> st.SearchStrategy[list[Msg]]:
    """Good events with hostile messages, exact re-sends and conflicts in between."""
    return st.lists(message_specs(), min_size=min_size, max_size=max_size).map(resolve)
