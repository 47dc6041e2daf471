"""400 good events interleaved with every kind of hostile message, drained by a Dagster drain run.

The messages that used to make the drain raise (and so never ack, until the delivery limit
dead-lettered whole prefetch windows of good events) are here beside contract violations,
personal data in the wrong field, oversized bodies, a message_id reused with another body, a
row Postgres refuses, non-UTF-8 routing keys and AMQP properties and headers of every type. One
drain run must land every good event once, quarantine every bad message, record the conflict,
leave every queue (the dead-letter queue included) empty, and succeed.
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import uuid

import orjson
import pika
import pytest
from dagster import instance_for_test, materialize

from latam_dagster.assets.raw import raw_assets
from latam_dagster.ingest.drain import QUARANTINE_HEAD_BYTES
from latam_dagster.ingest.topology import open_connection
from latam_dagster.resources import RabbitMQResource, WarehouseResource
from tests.conftest import query
from tests.integration.ingest_helpers import (
    BAD_CASES,
    RAW_TABLES,
    UndecodableHeaders,
    assert_queues_empty,
    dumps,
    make_flight_event,
    make_passenger_event,
    make_position_event,
    queue_counts,
    wait_until,
)

pytestmark = pytest.mark.integration

GOOD_EVENTS = 400
KEY_OF_TYPE = {
    "flight_status": "flight.sabre",
    "passenger_event": "passenger.amadeus",
    "position_report": "position.adsb-feed",
}
HEADERS = {
    "text": "São Paulo ✈",
    "bytes": b"\xff\xfe\x00raw",
    "int": -(2**40),
    "big": 2**62,
    "decimal": decimal.Decimal("12.34"),
    "bool": True,
    "none": None,
    "when": dt.datetime(2026, 11, 30, 12, 0, 0),
    "nested": {"a": [1, "two", {"three": b"\x00"}]},
    "list": [None, False, 3, "x\u0000y"],
}
PROPERTIES = pika.BasicProperties(
    content_type="text/\u0000plain",
    content_encoding="gzip",
    headers=HEADERS,
    delivery_mode=2,
    priority=9,
    correlation_id="\u202eevil",
    reply_to="replies.\u0000\xff",
    expiration="3600000",
    message_id="not-a-uuid-\x00",
    timestamp=2**31,
    type="flight_status",
    app_id="\x1b[31mred",
)


def _deep_nul(depth: int) -> bytes:
    """A valid event with an extra field nested `depth` levels deep, a NUL in every level's key
    (written as JSON text: serialisers refuse such depths)."""
    nested = b'{"v":"x\\u0000","k\\u0000":' * depth + b'"end"' + b"}" * depth
    return dumps(make_flight_event(payload={"extra": "@"})).replace(b'"@"', nested)


def good_events() -> list[dict]:
    makers = (make_flight_event, make_passenger_event, make_position_event)
    events = []
    for i in range(GOOD_EVENTS):
        event = makers[i % 3]()
        if event["event_type"] == "flight_status":
            event["payload"]["flight_number"] = 1 + i
        events.append(event)
    return events


def hostile_messages(goods: list[dict]) -> list[tuple[bytes, bytes | str]]:
    """(body, routing key) of every kind of message a hostile or broken source can send."""
    flight = make_flight_event()
    nul_id = make_flight_event(message_id=str(uuid.uuid4())[:-1] + "\u0000")
    too_deep = b'{"a":' * 1100 + b"1" + b"}" * 1100
    pii = make_passenger_event(
        payload={"flight_number": "JUAN PEREZ AB1234567", "passenger_ref": {"passport": "X"}}
    )
    surrogate = dumps(make_flight_event()).replace(b'"CC-BGA"', b'"\\ud800"')
    refused = dumps(make_position_event()).replace(b'"latitude":-33.39', b'"latitude":1e-400')
    reused = dict(goods[0], event_time="2026-11-27T11:00:00-03:00")  # same id, another body
    huge = dumps(make_flight_event(payload={"padding": "x" * (2 * 1024 * 1024)}))
    items: list[tuple[bytes, bytes | str]] = [
        (dumps(flight), b"flight.\xff\xfe"),  # valid event, routing key not UTF-8
        (dumps(nul_id), "flight.sabre"),
        (_deep_nul(900), "flight.sabre"),
        (too_deep, "flight.sabre"),
        (dumps(pii), "passenger.amadeus"),
        (surrogate, "flight.sabre"),
        (refused, "position.adsb-feed"),
        (dumps(reused), KEY_OF_TYPE[reused["event_type"]]),
        (huge, "flight.sabre"),
        (b"\xff" * 100, b"\x00\xff.bad"),  # unrouted, not UTF-8 anywhere
        (b"", "passenger.x"),
    ]
    items += [(case.body, case.routing_key) for case in BAD_CASES]
    return items


def _publish(amqp_url: str, exchange: str, items: list[tuple[bytes, bytes | str]]) -> None:
    conn = open_connection(amqp_url)
    try:
        ch = conn.channel()
        ch.confirm_delivery()
        for i, (body, key) in enumerate(items):
            # odd ones with every property and header type pika sends, every fifth with a
            # header value pika cannot decode (the drain must not lose its connection over it)
            props = [pika.BasicProperties(delivery_mode=2), PROPERTIES][i % 2]
            props = UndecodableHeaders() if i % 5 == 0 else props
            ch.basic_publish(exchange, key, body, props)
    finally:
        conn.close()


def test_good_events_land_and_hostile_ones_are_quarantined(amqp_url, warehouse_url, topology):
    goods = good_events()
    hostile = hostile_messages(goods)
    # interleave: a hostile message after every few good ones, so every batch holds both
    items: list[tuple[bytes, bytes | str]] = []
    step = max(GOOD_EVENTS // len(hostile), 1)
    bad = iter(hostile)
    for i, event in enumerate(goods):
        items.append((dumps(event), KEY_OF_TYPE[event["event_type"]]))
        if i % step == 0 and (message := next(bad, None)) is not None:
            items.append(message)
    items.extend(bad)
    _publish(amqp_url, topology.exchange, items)
    wait_until(
        lambda: sum(queue_counts(amqp_url, topology.queues).values()) == len(items),
        timeout=60,
        what="every message in its queue",
    )

    resources = {
        "rabbitmq": RabbitMQResource(amqp_url=amqp_url, prefix=topology.prefix),
        "warehouse": WarehouseResource(url=warehouse_url),
    }
    with instance_for_test() as instance:
        result = materialize(raw_assets, resources=resources, instance=instance)
    assert result.success

    landed = {
        mid
        for table in RAW_TABLES
        for (mid,) in query(warehouse_url, f"SELECT message_id::text FROM {table}")
    }
    assert {e["message_id"] for e in goods} <= landed
    # the first body of the reused id is the one kept
    kept = query(
        warehouse_url,
        "SELECT body_sha256 FROM raw.flight_events WHERE message_id = %s",
        (goods[0]["message_id"],),
    )
    assert bytes(kept[0][0]) == hashlib.sha256(dumps(goods[0])).digest()
    [conflict] = query(
        warehouse_url,
        "SELECT message_id::text, kept_sha256, conflicting_sha256 FROM raw.message_id_conflicts",
    )
    assert conflict[0] == goods[0]["message_id"]
    assert bytes(conflict[2]) != bytes(conflict[1])

    # every hostile message but the reused id (a duplicate) and the valid event under a
    # non-UTF-8 routing key (it lands) is in the quarantine, by the hash of its whole body
    quarantined = {
        bytes(sha): (bytes(body), truncated, size)
        for sha, body, truncated, size in query(
            warehouse_url,
            "SELECT body_sha256, body, body_truncated, body_bytes FROM raw.quarantine",
        )
    }
    expected_bad = [body for body, _key in hostile[1:] if body != hostile[7][0]]
    missing = [b[:60] for b in expected_bad if hashlib.sha256(b).digest() not in quarantined]
    assert not missing, f"not quarantined: {missing}"
    huge = hostile[8][0]
    head, truncated, size = quarantined[hashlib.sha256(huge).digest()]
    assert (head, truncated, size) == (huge[:QUARANTINE_HEAD_BYTES], True, len(huge))
    assert orjson.loads(hostile[0][0])["message_id"] in landed

    reasons = [r for (r,) in query(warehouse_url, "SELECT reason FROM raw.quarantine")]
    assert not [r for r in reasons if "JUAN" in r or "AB1234567" in r]
    assert_queues_empty(amqp_url, topology)  # the dead-letter queue included
