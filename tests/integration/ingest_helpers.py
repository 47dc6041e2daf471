"""Helpers shared by the ingestion tests: contract-valid events, publishing and drain shortcuts.

The `make_*_event` builders return fresh, contract-valid dicts (a new uuid `message_id` each
call). `payload=` entries are merged into the default payload; a value of `DROP` removes the key.
Other keyword arguments replace envelope fields (again `DROP` removes one).
"""

from __future__ import annotations

import calendar
import struct
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import orjson
import pika
from pika.adapters.blocking_connection import BlockingChannel

from latam_dagster.ingest.drain import DrainConfig, DrainStats, drain_queue
from latam_dagster.ingest.publish import Publisher
from latam_dagster.ingest.topology import QUEUES, Topology, open_connection
from tests.conftest import query
from tests.waiting import eventually

DROP = object()
"""Sentinel: pass it as a value to remove that key from the event or its payload."""

FAMILY_OF_TYPE = {etype: family for family, (_p, _t, etype) in QUEUES.items() if etype}
RAW_TABLES = ("raw.flight_events", "raw.passenger_events", "raw.position_reports")


def apply_changes(target: dict, changes: Mapping[str, Any], drop: object = DROP) -> dict:
    """`target`, changed in place: each key of `changes` set to its value, or removed when the
    value is `drop`."""
    for key, value in changes.items():
        if value is drop:
            target.pop(key, None)
        else:
            target[key] = value
    return target


def _build(envelope: dict[str, Any], payload: dict[str, Any], overrides: dict[str, Any]) -> dict:
    payload_overrides = overrides.pop("payload", {})
    if payload_overrides is DROP:
        pass
    elif isinstance(payload_overrides, dict):
        envelope["payload"] = apply_changes(payload, payload_overrides)
    else:  # a payload that is not an object, for contract tests
        envelope["payload"] = payload_overrides
    return apply_changes(envelope, overrides)


def _envelope(event_type: str, source: str) -> dict[str, Any]:
    return {
        "message_id": str(uuid.uuid4()),
        "schema_version": 1,
        "event_type": event_type,
        "event_time": "2026-11-27T10:15:00-03:00",
        "source_system": source,
    }


def make_flight_event(**overrides: Any) -> dict[str, Any]:
    """A `flight_status` event for LA800 SCL-LIM on 2026-11-27."""
    payload = {
        "carrier": "LA",
        "flight_number": 800,
        "flight_date": "2026-11-27",
        "origin": "SCL",
        "destination": "LIM",
        "status": "scheduled",
        "scheduled_departure": "2026-11-27T12:30:00-03:00",
        "scheduled_arrival": "2026-11-27T14:45:00-05:00",
        "actual_departure": None,
        "actual_arrival": None,
        "tail_number": "CC-BGA",
        "seat_capacity": 174,
    }
    return _build(_envelope("flight_status", "sabre"), payload, overrides)


def make_passenger_event(**overrides: Any) -> dict[str, Any]:
    """A `passenger_event` (a booking) on LA800 SCL 2026-11-27."""
    payload = {
        "passenger_ref": f"PNR-{uuid.uuid4().hex[:8].upper()}",
        "carrier": "LA",
        "flight_number": 800,
        "flight_date": "2026-11-27",
        "origin": "SCL",
        "action": "booked",
        "cabin": "economy",
        "fare_amount": 189.9,
        "currency": "USD",
    }
    return _build(_envelope("passenger_event", "amadeus"), payload, overrides)


def make_position_event(**overrides: Any) -> dict[str, Any]:
    """A `position_report` of CC-BGA near Santiago, flying LA800."""
    payload = {
        "tail_number": "CC-BGA",
        "latitude": -33.39,
        "longitude": -70.79,
        "altitude_ft": 3500,
        "ground_speed_kt": 180.5,
        "heading_deg": 355.0,
        "carrier": "LA",
        "flight_number": 800,
        "flight_date": "2026-11-27",
        "origin": "SCL",
    }
    return _build(_envelope("position_report", "adsb-feed"), payload, overrides)


MAKERS = {
    "flight_status": make_flight_event,
    "passenger_event": make_passenger_event,
    "position_report": make_position_event,
}


def dumps(event: Any) -> bytes:
    return orjson.dumps(event)


class UndecodableHeaders(pika.BasicProperties):
    """Properties with a header pika itself cannot decode: a timestamp far past year 9999 (the
    broker stores and forwards it as it is; a plain pika client loses its connection on it)."""

    STAMP = datetime(2020, 1, 1)

    def __init__(self) -> None:
        super().__init__(
            delivery_mode=2, headers={"a-ok": "fine", "b-when": self.STAMP, "c-after": 1}
        )

    def encode(self) -> list[bytes]:
        blob = b"".join(super().encode())
        stamp = struct.pack(">cQ", b"T", calendar.timegm(self.STAMP.utctimetuple()))
        return [blob.replace(stamp, struct.pack(">cQ", b"T", 2**62))]


def publish_raw(amqp_url: str, topo: Topology, body: bytes, routing_key: str) -> None:
    """Publish one body exactly as given, with publisher confirms."""
    publish_many(amqp_url, topo, [(body, routing_key)])


def publish_many(amqp_url: str, topo: Topology, items: Iterable[tuple[bytes, str]]) -> int:
    """Publish (body, routing key) pairs in order over one confirmed channel. Returns the count."""
    n = 0
    with Publisher(amqp_url, topo, declare_topology=False) as pub:
        for body, routing_key in items:
            pub.publish_body(body, routing_key)
            n += 1
    return n


def publish_events(amqp_url: str, topo: Topology, events: Iterable[dict]) -> int:
    """Publish events under their natural routing key (confirmed)."""
    with Publisher(amqp_url, topo, declare_topology=False) as pub:
        n = 0
        for event in events:
            pub.publish_event(event)
            n += 1
    return n


def publish_bulk(
    amqp_url: str, topo: Topology, bodies: Iterable[bytes], routing_key: str, queue: str
) -> int:
    """Publish many persistent bodies fast (no per-message confirm), then wait until `queue`
    holds them all. For volume set-ups only; assumes `queue` starts empty."""
    conn = open_connection(amqp_url)
    n = 0
    try:
        ch = conn.channel()
        props = pika.BasicProperties(delivery_mode=2, content_type="application/json")
        for body in bodies:
            ch.basic_publish(topo.exchange, routing_key, body, props)
            n += 1
    finally:
        conn.close()
    wait_until(lambda: queue_state(amqp_url, queue)[0] >= n, timeout=60, what=f"{n} in {queue}")
    return n


QUARANTINE_COLUMNS = (
    "queue",
    "routing_key",
    "reason",
    "error_class",
    "message_id",
    "body",
    "body_sha256",
    "body_bytes",
    "body_truncated",
)


def quarantine_rows(url: str) -> list[dict]:
    """Every quarantine row, oldest first, as dicts (bodies and hashes as bytes)."""
    sql = f"SELECT {', '.join(QUARANTINE_COLUMNS)} FROM raw.quarantine ORDER BY quarantine_id"
    rows = []
    for row in query(url, sql):
        rec = dict(zip(QUARANTINE_COLUMNS, row, strict=True))
        rec["body"], rec["body_sha256"] = bytes(rec["body"]), bytes(rec["body_sha256"])
        rows.append(rec)
    return rows


def queue_state(amqp_url: str, queue: str) -> tuple[int, int]:
    """(ready messages, consumers) of a queue, by passive declare."""
    conn = open_connection(amqp_url)
    try:
        ok = conn.channel().queue_declare(queue, passive=True).method
        return ok.message_count, ok.consumer_count
    finally:
        conn.close()


@contextmanager
def amqp_channel(amqp_url: str) -> Iterator[BlockingChannel]:
    """A channel on a connection of its own, closed afterwards."""
    conn = open_connection(amqp_url)
    try:
        yield conn.channel()
    finally:
        conn.close()


def queue_count(amqp_url: str, queue: str) -> int:
    return queue_state(amqp_url, queue)[0]


def queue_counts(amqp_url: str, queues: Iterable[str]) -> dict[str, int]:
    """Ready messages per queue, over one connection."""
    conn = open_connection(amqp_url)
    try:
        ch = conn.channel()
        return {q: ch.queue_declare(q, passive=True).method.message_count for q in queues}
    finally:
        conn.close()


def all_queues(topo: Topology) -> list[str]:
    """The drainable queues plus the dead-letter and unrouted queues of a topology."""
    return list(dict.fromkeys([*topo.queues, topo.dead_queue, topo.unrouted_queue]))


def assert_queues_empty(amqp_url: str, topo: Topology) -> None:
    """Every queue drained, nothing dead-lettered, nothing unrouted."""
    counts = queue_counts(amqp_url, all_queues(topo))
    assert all(n == 0 for n in counts.values()), f"messages left behind: {counts}"


def wait_until(predicate, timeout: float = 30.0, interval: float = 0.05, what: str = "") -> None:
    eventually(predicate, timeout, what or repr(predicate), interval=interval)


def fast_config(**overrides: Any) -> DrainConfig:
    """A drain configuration for tests: small batches, short idle wait."""
    params: dict[str, Any] = {
        "batch_size": 50,
        "prefetch": 100,
        "max_seconds": 60.0,
        "idle_seconds": 0.3,
    }
    params.update(overrides)
    return DrainConfig(**params)


def drain(
    amqp_url: str,
    warehouse_url: str,
    topo: Topology,
    family: str,
    on_batch: Callable[[DrainStats], None] | None = None,
    **config: Any,
) -> DrainStats:
    """`drain_queue` with `fast_config(**config)`."""
    return drain_queue(amqp_url, warehouse_url, topo, family, fast_config(**config), on_batch)


def drain_all(amqp_url: str, warehouse_url: str, topo: Topology, **config: Any) -> list[DrainStats]:
    return [drain(amqp_url, warehouse_url, topo, family, **config) for family in QUEUES]


# --- bad input ---------------------------------------------------------------------------------


class BadCase:
    """A message body that breaks the contract and what its quarantine reason must mention."""

    def __init__(self, id: str, body: bytes, *reason_parts: str, routing_key: str = "flight.bad"):
        self.id = id
        self.body = body
        self.reason_parts = reason_parts
        self.routing_key = routing_key

    def reason_ok(self, reason: str) -> bool:
        low = reason.lower()
        return all(part.lower() in low for part in self.reason_parts)

    def __repr__(self) -> str:
        return f"BadCase({self.id})"


TWO_MB = 2 * 1024 * 1024


def _two_mb_event() -> bytes:
    body = dumps(make_flight_event(payload={"padding": "x" * TWO_MB}))
    assert len(body) > TWO_MB
    return body


def _latin1_event() -> bytes:
    text = dumps(make_flight_event(payload={"tail_number": "São-1"})).decode("utf-8")
    return text.encode("latin-1")


def _with_time(value: Any) -> bytes:
    return dumps(make_flight_event(event_time=value))


BAD_CASES: list[BadCase] = [
    BadCase("not_json", b'{"message_id": "5c9f", "payload": {', "not JSON"),
    BadCase("not_json_text", b"LA800 departed SCL at 10:15", "not JSON"),
    BadCase("whitespace_only", b"   \n", "not JSON"),
    BadCase("not_utf8", _latin1_event(), "not UTF-8"),
    BadCase("not_utf8_bytes", b"\xff\xfe\x00{", "not UTF-8"),
    BadCase("json_array", b'[{"event_type": "flight_status"}]', "not an object", "list"),
    BadCase("json_string", b'"flight_status"', "not an object", "str"),
    BadCase("json_null", b"null", "not an object"),
    BadCase("json_number", b"42", "not an object", "int"),
    BadCase(
        "missing_event_time", dumps(make_flight_event(event_time=DROP)), "missing", "event_time"
    ),
    BadCase(
        "missing_message_id_and_payload",
        dumps(make_flight_event(message_id=DROP, payload=DROP)),
        "missing",
        "message_id",
        "payload",
    ),
    BadCase("empty_object", b"{}", "missing envelope", "message_id"),
    BadCase(
        "missing_payload_field",
        dumps(make_flight_event(payload={"status": DROP})),
        "status",
        "required",
    ),
    BadCase(
        "flight_number_as_string",
        dumps(make_flight_event(payload={"flight_number": "800"})),
        "flight_number",
        "integer",
    ),
    BadCase(
        "flight_number_as_bool",
        dumps(make_flight_event(payload={"flight_number": True})),
        "flight_number",
        "integer",
    ),
    BadCase(
        "payload_not_object", dumps(make_flight_event(payload=["LA", 800])), "payload", "object"
    ),
    BadCase("status_unknown", dumps(make_flight_event(payload={"status": "landed"})), "status"),
    BadCase("bad_message_id", dumps(make_flight_event(message_id="msg-1")), "message_id"),
    BadCase("bad_source_system", dumps(make_flight_event(source_system="Sabre!")), "source_system"),
    BadCase(
        "unknown_event_type",
        dumps(make_flight_event(event_type="baggage_scan")),
        "unknown event_type",
    ),
    BadCase(
        "schema_version_2",
        dumps(make_flight_event(schema_version=2)),
        "schema_version",
        "unsupported",
    ),
    BadCase(
        "schema_version_string",
        dumps(make_flight_event(schema_version="1")),
        "schema_version",
        "integer",
    ),
    BadCase("event_time_month_13", _with_time("2026-13-27T10:15:00-03:00"), "event_time"),
    BadCase("event_time_no_offset", _with_time("2026-11-27T10:15:00"), "event_time"),
    BadCase("event_time_garbage", _with_time("yesterday at noon"), "event_time"),
    BadCase("event_time_epoch_number", _with_time(1795000000), "event_time"),
    BadCase("event_time_year_0", _with_time("0000-11-27T10:15:00Z"), "event_time", "RFC 3339"),
    BadCase(
        "actual_arrival_feb_30",
        dumps(make_flight_event(payload={"actual_arrival": "2026-02-30T10:15:00Z"})),
        "actual_arrival",
    ),
    BadCase(
        "latitude_123",
        dumps(make_position_event(payload={"latitude": 123})),
        "latitude",
        "90",
        routing_key="position.adsb-feed",
    ),
    BadCase(
        "heading_360",
        dumps(make_position_event(payload={"heading_deg": 360})),
        "heading_deg",
        routing_key="position.adsb-feed",
    ),
    BadCase(
        "passenger_bad_action",
        dumps(make_passenger_event(payload={"action": "teleported"})),
        "action",
        routing_key="passenger.amadeus",
    ),
    BadCase("empty_body", b"", "empty"),
    BadCase("two_megabytes", _two_mb_event(), "too large"),
    BadCase(
        "nul_in_string",
        dumps(make_flight_event(payload={"tail_number": "CC\u0000BGA"})),
        "NUL",
    ),
    BadCase(
        "nul_in_key",
        dumps({**make_flight_event(), "note\u0000": "x"}),
        "NUL",
    ),
    BadCase(
        "flight_date_feb_30",
        dumps(make_flight_event(payload={"flight_date": "2026-02-30"})),
        "flight_date",
    ),
]
BAD_CASES_BY_ID = {case.id: case for case in BAD_CASES}
assert len(BAD_CASES_BY_ID) == len(BAD_CASES), "duplicate BadCase ids"
