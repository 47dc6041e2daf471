"""Dead letters on the real broker: `latam dead list/replay`, and the at-least-once topology.

Each test declares its own topology with a delivery limit of 1, so a message dies after its
second return; or it is rejected without requeue, which a quorum queue dead-letters at once.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import struct
import subprocess
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote, unquote, urlsplit

import orjson
import pika
import pytest
from pika.adapters.blocking_connection import BlockingChannel

from latam_dagster.ingest.drain import DrainStats
from latam_dagster.ingest.topology import (
    Topology,
    declare,
    declare_topology,
    delete_topology,
)
from tests.conftest import LATAM, query
from tests.integration.ingest_helpers import (
    UndecodableHeaders,
    amqp_channel,
    drain,
    make_flight_event,
    publish_many,
    queue_count,
    queue_counts,
    wait_until,
)

pytestmark = pytest.mark.integration

MANAGEMENT = os.environ.get("LATAM_TEST_MANAGEMENT_URL", "http://localhost:15672")
UNSAFE_BYTES = (b"\x00", b"\x07", b"\x1b")


@pytest.fixture
def topo(amqp_url: str) -> Iterator[Topology]:
    """A topology of this test alone whose queues dead-letter after the second delivery."""
    t = Topology(prefix=f"d{uuid.uuid4().hex[:10]}", delivery_limit=1)
    declare_topology(amqp_url, t)
    yield t
    delete_topology(amqp_url, t)


@pytest.fixture
def env(topo: Topology, amqp_url: str, warehouse_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "LATAM_WAREHOUSE_URL": warehouse_url,
        "LATAM_AMQP_URL": amqp_url,
        "LATAM_TOPOLOGY_PREFIX": topo.prefix,
        "LATAM_DELIVERY_LIMIT": str(topo.delivery_limit),
    }


def latam(env: dict[str, str], *args: str) -> bytes:
    proc = subprocess.run([LATAM, *args], env=env, capture_output=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-3000:]
    assert b"Traceback" not in proc.stderr
    return proc.stdout


def latam_json(env: dict[str, str], *args: str) -> list[dict]:
    return json.loads(latam(env, *args, "--json"))


def publish(amqp_url: str, topo: Topology, items, headers: dict | None = None) -> None:
    """Publish (body, routing key) pairs, confirmed, with optional headers and a message_id."""
    with amqp_channel(amqp_url) as ch:
        ch.confirm_delivery()
        for body, key in items:
            props = pika.BasicProperties(delivery_mode=2, headers=headers)
            ch.basic_publish(topo.exchange, key, body, props)


@contextmanager
def holding(amqp_url: str, queue: str, n: int) -> Iterator[BlockingChannel]:
    """A channel, once `queue` holds at least `n` messages."""
    wait_until(lambda: queue_count(amqp_url, queue) >= n, what=f"{n} in {queue}")
    with amqp_channel(amqp_url) as ch:
        yield ch


def reject_all(amqp_url: str, queue: str, n: int) -> None:
    """Take `n` messages from `queue` and reject them without requeue: dead-lettered at once."""
    with holding(amqp_url, queue, n) as ch:
        for _ in range(n):
            method, _props, _body = ch.basic_get(queue)
            assert method is not None
            ch.basic_reject(method.delivery_tag, requeue=False)


def exhaust_delivery_limit(amqp_url: str, queue: str, n: int) -> None:
    """Return `n` messages to `queue` until the delivery limit dead-letters every one of them."""
    with holding(amqp_url, queue, n) as ch:
        while (method := ch.basic_get(queue)[0]) is not None:
            ch.basic_reject(method.delivery_tag, requeue=True)


def wait_dead(amqp_url: str, topo: Topology, n: int) -> None:
    wait_until(
        lambda: queue_count(amqp_url, topo.dead_queue) == n, what=f"{n} in {topo.dead_queue}"
    )


def take_all(amqp_url: str, queue: str) -> list[tuple[pika.spec.Basic.GetOk, object, bytes]]:
    """Consume (and ack) every message of `queue`."""
    out = []
    with amqp_channel(amqp_url) as ch:
        while (got := ch.basic_get(queue, auto_ack=True))[0] is not None:
            out.append(got)
    return out


# --- list ----------------------------------------------------------------------------------------


def test_list_shows_bodies_and_routing_keys_safely_and_leaves_the_queue_unchanged(
    env, amqp_url, topo
):
    event = make_flight_event()
    valid = orjson.dumps(event)
    not_utf8 = b"\xff\xfe\x00{garbage"
    escapes = b'{"message_id": "not-a-uuid", "x": "\x00\x1b[2J\x1b]0;pwned\x07"}'
    publish(
        amqp_url,
        topo,
        [(valid, "flight.sabre"), (not_utf8, b"flight.\xff\xfe"), (escapes, "flight.\x1b[31m")],
    )
    reject_all(amqp_url, topo.queue("flights"), 3)
    wait_dead(amqp_url, topo, 3)

    for args in ((), ("--show-body",), ("--json",), ("--json", "--show-body")):
        out = latam(env, "dead", "list", *args)
        for raw in UNSAFE_BYTES:
            assert raw not in out, (args, raw)
    out = latam(env, "dead", "list")
    assert b"3 dead letter(s)" in out
    assert b"key flight.\\xff\\xfe" in out
    assert b"hex:fffe007b" in out
    assert b"\\x00\\x1b[2J\\x1b]0;pwned\\x07" in out

    listed = {d["size"]: d for d in latam_json(env, "dead", "list")}
    assert set(listed) == {len(valid), len(not_utf8), len(escapes)}
    for d in listed.values():
        assert d["queue"] == topo.queue("flights")
        assert (d["reason"], d["count"]) == ("rejected", 1)
        assert d["dead_lettered_at"]
    assert listed[len(valid)]["routing_key"] == "flight.sabre"
    assert listed[len(valid)]["message_id"] == event["message_id"]
    assert listed[len(not_utf8)]["routing_key"] == "flight.\\xff\\xfe"
    assert listed[len(not_utf8)]["body_preview"] == "hex:fffe007b67617262616765"
    assert listed[len(not_utf8)]["message_id"] is None
    assert listed[len(escapes)]["routing_key"] == "flight.\\x1b[31m"
    assert listed[len(escapes)]["message_id"] is None  # not a UUID: not shown

    # listing took nothing away: the same three messages, bytes unchanged
    assert queue_count(amqp_url, topo.dead_queue) == 3
    bodies = sorted(body for _m, _p, body in take_all(amqp_url, topo.dead_queue))
    assert bodies == sorted([valid, not_utf8, escapes])


def test_list_limit_and_a_long_body(env, amqp_url, topo):
    long_body = orjson.dumps(make_flight_event(payload={"padding": "é" * 5000}))
    publish(
        amqp_url, topo, [(long_body, "flight.a")] + [(b"x%d" % i, "flight.b") for i in range(4)]
    )
    reject_all(amqp_url, topo.queue("flights"), 5)
    wait_dead(amqp_url, topo, 5)
    first = latam_json(env, "dead", "list", "--limit", "2")
    assert [d["position"] for d in first] == [1, 2]
    assert len(latam_json(env, "dead", "list")) == 5
    shown = {d["size"]: d for d in latam_json(env, "dead", "list", "--show-body")}
    big = shown[len(long_body)]
    assert len(big["body_preview"]) == 80 and big["body_preview"].endswith("…")
    assert len(big["body"]) == 4000 and big["body"].endswith("…")
    assert shown[2]["body"] in {"x0", "x1", "x2", "x3"}
    assert queue_count(amqp_url, topo.dead_queue) == 5


def test_list_shows_the_delivery_limit_as_the_reason(env, amqp_url, topo):
    publish(amqp_url, topo, [(orjson.dumps(make_flight_event()), "flight.sabre")])
    exhaust_delivery_limit(amqp_url, topo.queue("flights"), 1)
    wait_dead(amqp_url, topo, 1)
    (d,) = latam_json(env, "dead", "list")
    assert (d["queue"], d["reason"], d["count"]) == (topo.queue("flights"), "delivery_limit", 1)


# --- replay --------------------------------------------------------------------------------------


def test_replay_moves_every_dead_letter_back_and_a_drain_lands_them_once(
    env, amqp_url, warehouse_url, topo
):
    events = [make_flight_event() for _ in range(4)]
    items = [(orjson.dumps(e), "flight.sabre") for e in events[:3]]
    items.append((orjson.dumps(events[3]), b"flight.\xff"))  # a routing key that is not UTF-8
    publish(amqp_url, topo, items, headers={"trace": "abc", "raw": b"\xff\x00", "nothing": None})
    exhaust_delivery_limit(amqp_url, topo.queue("flights"), 4)
    wait_dead(amqp_url, topo, 4)

    out = latam(env, "dead", "replay")
    assert b"examined 4, replayed 4, no original routing key 0, refused by the broker 0" in out
    assert queue_counts(amqp_url, [topo.dead_queue, topo.queue("flights")]) == {
        topo.dead_queue: 0,
        topo.queue("flights"): 4,
    }
    # back under the original routing keys, without the broker's death records
    with amqp_channel(amqp_url) as ch:
        seen = []
        for _ in range(4):
            method, props, _body = ch.basic_get(topo.queue("flights"))
            seen.append(method.routing_key)
            headers = props.headers
            assert headers["trace"] == "abc" and headers["raw"] == b"\xff\x00"
            assert "nothing" in headers and headers["nothing"] is None
            assert not [h for h in headers if h.startswith(("x-death", "x-first-", "x-last-"))]
            assert props.delivery_mode == 2
        ch.basic_nack(0, multiple=True, requeue=True)  # one return each: within the limit
    assert sorted(seen, key=repr) == sorted(["flight.sabre"] * 3 + [b"flight.\xff"], key=repr)

    stats = drain(amqp_url, warehouse_url, topo, "flights")
    assert (stats.received, stats.inserted, stats.quarantined) == (4, 4, 0)
    rows = query(warehouse_url, "SELECT message_id::text FROM raw.flight_events")
    assert sorted(r[0] for r in rows) == sorted(e["message_id"] for e in events)
    assert queue_counts(amqp_url, [topo.dead_queue, topo.queue("flights")]) == {
        topo.dead_queue: 0,
        topo.queue("flights"): 0,
    }


def test_replay_is_idempotent_with_raw_dedup(env, amqp_url, warehouse_url, topo):
    event = make_flight_event()
    body = orjson.dumps(event)

    def dead_lettered_replayed_and_drained(times: int) -> DrainStats:
        for _ in range(times):
            publish(amqp_url, topo, [(body, "flight.sabre")])
            reject_all(amqp_url, topo.queue("flights"), 1)
        wait_dead(amqp_url, topo, times)
        assert f"examined {times}, replayed {times}".encode() in latam(env, "dead", "replay")
        return drain(amqp_url, warehouse_url, topo, "flights")

    # the same message dead-lettered twice (say a replay that died between confirm and ack)
    stats = dead_lettered_replayed_and_drained(2)
    assert (stats.received, stats.inserted, stats.duplicates) == (2, 1, 1)
    assert b"examined 0, replayed 0" in latam(env, "dead", "replay")
    # and once more after it is already in raw: still one row
    stats = dead_lettered_replayed_and_drained(1)
    assert (stats.received, stats.inserted, stats.duplicates) == (1, 0, 1)
    assert query(warehouse_url, "SELECT message_id::text FROM raw.flight_events") == [
        (event["message_id"],)
    ]


def test_dry_run_changes_nothing_and_limit_replays_only_that_many(env, amqp_url, topo):
    bodies = [orjson.dumps(make_flight_event()) for _ in range(3)]
    publish(amqp_url, topo, [(b, "flight.sabre") for b in bodies])
    reject_all(amqp_url, topo.queue("flights"), 3)
    wait_dead(amqp_url, topo, 3)
    before = sorted((d["size"], d["message_id"]) for d in latam_json(env, "dead", "list"))

    out = latam(env, "dead", "replay", "--dry-run")
    assert b"dry run: examined 3, replayed 3" in out
    flights = topo.queue("flights")
    assert queue_counts(amqp_url, [topo.dead_queue, flights]) == {topo.dead_queue: 3, flights: 0}
    after = sorted((d["size"], d["message_id"]) for d in latam_json(env, "dead", "list"))
    assert after == before

    assert b"examined 2, replayed 2" in latam(env, "dead", "replay", "--limit", "2")
    wait_until(lambda: queue_count(amqp_url, flights) == 2, what="2 replayed")
    assert queue_count(amqp_url, topo.dead_queue) == 1


def test_a_message_without_death_record_is_listed_and_left_alone(env, amqp_url, topo):
    with amqp_channel(amqp_url) as ch:
        ch.confirm_delivery()
        ch.basic_publish(topo.dlx, "anything", b"straight into the dead-letter exchange")
    wait_dead(amqp_url, topo, 1)
    (d,) = latam_json(env, "dead", "list")
    assert d["queue"] is None and d["reason"] is None and d["count"] is None
    out = latam(env, "dead", "replay")
    assert b"examined 1, replayed 0, no original routing key 1" in out
    assert queue_count(amqp_url, topo.dead_queue) == 1


def test_headers_the_client_cannot_decode_do_not_break_list_or_replay(
    env, amqp_url, warehouse_url, topo
):
    event = make_flight_event()
    with amqp_channel(amqp_url) as ch:
        ch.confirm_delivery()
        ch.basic_publish(topo.exchange, "flight.sabre", orjson.dumps(event), UndecodableHeaders())
    reject_all_raw(amqp_url, topo.queue("flights"))
    wait_dead(amqp_url, topo, 1)
    (d,) = latam_json(env, "dead", "list")
    assert d["queue"] == topo.queue("flights") and d["message_id"] == event["message_id"]
    assert b"examined 1, replayed 1" in latam(env, "dead", "replay")
    wait_until(lambda: queue_count(amqp_url, topo.queue("flights")) == 1, what="replayed")
    with amqp_channel(amqp_url) as ch:
        method, props, _body = ch.basic_get(topo.queue("flights"))
        # the undecodable timestamp travels on as its raw bytes; its neighbours are intact
        assert props.headers["a-ok"] == "fine" and props.headers["c-after"] == 1
        assert props.headers["b-when"] == struct.pack(">cQ", b"T", 2**62)
        assert "x-death" not in props.headers
        ch.basic_nack(method.delivery_tag, requeue=True)
    stats = drain(amqp_url, warehouse_url, topo, "flights")
    assert stats.inserted == 1


def reject_all_raw(amqp_url: str, queue: str) -> None:
    """Dead-letter the one message of `queue`, whose headers plain pika cannot decode: made
    lenient the way the dead-letter commands make it."""
    from latam_dagster.ingest.amqp_headers import tolerate_odd_headers

    tolerate_odd_headers()
    reject_all(amqp_url, queue, 1)


# --- topology ------------------------------------------------------------------------------------


def _management_queue(amqp_url: str, name: str) -> dict:
    vhost = unquote(urlsplit(amqp_url).path[1:]) or "/"
    url = f"{MANAGEMENT}/api/queues/{quote(vhost, safe='')}/{quote(name, safe='')}"
    auth = base64.b64encode(b"guest:guest").decode()
    request = urllib.request.Request(url, headers={"Authorization": f"Basic {auth}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())
    except urllib.error.URLError as exc:
        pytest.skip(f"RabbitMQ management API not reachable at {MANAGEMENT}: {exc}")


def test_new_drainable_queues_dead_letter_at_least_once(amqp_url, topo):
    for name in topo.queues:
        args = _management_queue(amqp_url, name)["arguments"]
        assert args["x-dead-letter-strategy"] == "at-least-once", name
        assert args["x-overflow"] == "reject-publish", name
        assert args["x-dead-letter-exchange"] == topo.dlx
        assert args["x-delivery-limit"] == 1
    dead = _management_queue(amqp_url, topo.dead_queue)["arguments"]
    assert "x-dead-letter-exchange" not in dead  # the last stop: nowhere further to go
    # and it behaves so: with nowhere to go, a dead letter waits in its queue instead of being lost
    flights = topo.queue("flights")
    with amqp_channel(amqp_url) as ch:
        ch.queue_unbind(topo.dead_queue, topo.dlx)
    publish(amqp_url, topo, [(orjson.dumps(make_flight_event()), "flight.sabre")])
    reject_all(amqp_url, flights, 1)
    wait_until(
        lambda: _management_queue(amqp_url, flights).get("messages_dlx") == 1,
        what="the dead letter kept by its queue (management statistics)",
    )
    assert queue_count(amqp_url, topo.dead_queue) == 0


@pytest.fixture
def old_topology(amqp_url: str) -> Iterator[Topology]:
    """A topology whose drainable queues were declared by an older version (at-most-once)."""
    t = Topology(prefix=f"o{uuid.uuid4().hex[:10]}", delivery_limit=1)
    with amqp_channel(amqp_url) as ch:
        for name in t.queues:
            old_args = {
                "x-queue-type": "quorum",
                "x-delivery-limit": t.delivery_limit,
                "x-dead-letter-exchange": t.dlx,
            }
            ch.queue_declare(name, durable=True, arguments=old_args)
    yield t
    delete_topology(amqp_url, t)


def test_declaring_over_old_queues_keeps_them_and_warns_once(
    amqp_url, warehouse_url, old_topology, caplog
):
    topo = old_topology
    caplog.set_level(logging.WARNING)
    with amqp_channel(amqp_url) as ch:
        declare(ch, topo)
        assert ch.is_open  # the caller's channel survives the broker's refusals
        assert ch.queue_declare(topo.queue("flights"), passive=True).method.message_count == 0
        declare(ch, topo)  # a second drain in the same process: no second warning
    warnings = [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and r.name == "latam_dagster.ingest.topology"
    ]
    assert len(warnings) == len(topo.queues), warnings
    for name in topo.queues:
        (message,) = [w for w in warnings if w.startswith(f"queue {name} ")]
        assert "at-most-once" in message
        assert "delete_queue --if-empty" in message and "policy" in message
    # still the old arguments, and the queues still work end to end
    args = _management_queue(amqp_url, topo.queue("flights"))["arguments"]
    assert "x-dead-letter-strategy" not in args
    event = make_flight_event()
    publish_many(amqp_url, topo, [(orjson.dumps(event), "flight.sabre")])
    stats = drain(amqp_url, warehouse_url, topo, "flights")
    assert stats.inserted == 1
