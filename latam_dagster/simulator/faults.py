"""Broken messages of the kinds real feeds produce, each one a contract violation.

Every defect is built from a real event of the run (with a fresh message id, so it never shares an
id with a valid message) and keeps that event's routing key: a misbehaving source still publishes
on its own channel, which is how bad messages reach the queues and then the quarantine.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import orjson

from latam_dagster.simulator.encoding import uuid4_text

Defect = Callable[[random.Random, dict[str, Any], dict[str, Any] | None], bytes]
REQUIRED_PAYLOAD_FIELD = {
    "flight_status": "carrier",
    "passenger_event": "passenger_ref",
    "position_report": "tail_number",
}
ENVELOPE = ("message_id", "schema_version", "event_type", "event_time", "source_system", "payload")


def _copy(event: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    doc = dict(event)
    doc["payload"] = dict(event["payload"])
    doc["message_id"] = uuid4_text(rng.getrandbits(128))
    return doc


def not_json(rng: random.Random, event: dict, _pos: dict | None) -> bytes:
    """A truncated body or an HTML error page from a proxy."""
    if rng.random() < 0.5:
        return b"<html><body><h1>502 Bad Gateway</h1></body></html>"
    body = orjson.dumps(_copy(event, rng))
    return body[: max(1, len(body) // 2)]


def not_utf8(rng: random.Random, event: dict, _pos: dict | None) -> bytes:
    """A legacy system that encodes text as Latin-1."""
    doc = _copy(event, rng)
    doc["payload"]["remark"] = "Conexión São Paulo, puerta 12ª"
    return orjson.dumps(doc).decode("utf-8").encode("latin-1")


def json_array(rng: random.Random, event: dict, _pos: dict | None) -> bytes:
    """A batch sent as one message."""
    return orjson.dumps([_copy(event, rng)])


def missing_field(rng: random.Random, event: dict, _pos: dict | None) -> bytes:
    """An envelope field (or a required payload field) left out."""
    doc = _copy(event, rng)
    if rng.random() < 0.7:
        del doc[rng.choice(ENVELOPE)]
    else:
        del doc["payload"][REQUIRED_PAYLOAD_FIELD[doc["event_type"]]]
    return orjson.dumps(doc)


def wrong_type(rng: random.Random, event: dict, _pos: dict | None) -> bytes:
    """Numbers as strings, epoch timestamps, a list where an object belongs."""
    doc = _copy(event, rng)
    choice = rng.randrange(4)
    if choice == 0:
        doc["schema_version"] = "1"
    elif choice == 1:
        doc["event_time"] = 1795000000
    elif choice == 2:
        doc["payload"] = [doc["payload"]]
    else:
        doc["payload"]["carrier"] = 42
    return orjson.dumps(doc)


def unknown_event_type(rng: random.Random, event: dict, _pos: dict | None) -> bytes:
    doc = _copy(event, rng)
    doc["event_type"] = rng.choice(("baggage_scan", "crew_assignment", "FlightStatus"))
    return orjson.dumps(doc)


def schema_version_2(rng: random.Random, event: dict, _pos: dict | None) -> bytes:
    """A producer that upgraded before the platform did."""
    doc = _copy(event, rng)
    doc["schema_version"] = 2
    return orjson.dumps(doc)


def bad_timestamp(rng: random.Random, event: dict, _pos: dict | None) -> bytes:
    doc = _copy(event, rng)
    doc["event_time"] = rng.choice(
        ("2026-11-27T10:00:00", "27/11/2026 10:00", "2026-02-30T10:00:00Z", "yesterday")
    )
    return orjson.dumps(doc)


def latitude_out_of_range(rng: random.Random, event: dict, position: dict | None) -> bytes:
    """A position with latitude 123 (swapped or garbled coordinates)."""
    if position is None:
        return bad_timestamp(rng, event, None)
    doc = _copy(position, rng)
    doc["payload"]["latitude"] = 123.0
    return orjson.dumps(doc)


def empty_body(_rng: random.Random, _event: dict, _pos: dict | None) -> bytes:
    return b""


DEFECTS: dict[str, Defect] = {
    "not_json": not_json,
    "not_utf8": not_utf8,
    "json_array": json_array,
    "missing_field": missing_field,
    "wrong_type": wrong_type,
    "unknown_event_type": unknown_event_type,
    "schema_version_2": schema_version_2,
    "bad_timestamp": bad_timestamp,
    "latitude_out_of_range": latitude_out_of_range,
    "empty_body": empty_body,
}
