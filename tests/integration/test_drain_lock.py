"""One drain per queue at a time: the queue's lock in Postgres makes the next drain wait and take
over when the current one ends, and a drain that cannot get the queue drains nothing. Queues
drained together stop on idle only together."""

from __future__ import annotations

import threading
import time

import psycopg2
import pytest

from latam_dagster.ingest.drain import (
    STOP_QUEUE_BUSY,
    STOP_QUEUE_EMPTY,
    DrainConfig,
    DrainStats,
    IdleGroup,
    drain_queue,
)
from latam_dagster.ingest.drain_locks import DRAIN_LOCK_NAMESPACE, turn_lock_name
from latam_dagster.ingest.drain_together import drain_together
from tests.conftest import query
from tests.integration.ingest_helpers import (
    make_flight_event,
    make_position_event,
    publish_events,
    queue_state,
    wait_until,
)

pytestmark = pytest.mark.integration


def _hold(warehouse_url: str, queue: str) -> psycopg2.extensions.connection:
    """A connection holding the drain lock `queue` (a queue, or a turn), as a running drain does."""
    conn = psycopg2.connect(warehouse_url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", (DRAIN_LOCK_NAMESPACE, queue))
    return conn


def _ready(amqp_url: str, queue: str) -> int:
    return queue_state(amqp_url, queue)[0]


def test_a_second_drain_waits_for_the_first_and_then_drains(amqp_url, warehouse_url, topology):
    queue = topology.queue("flights")
    sent = publish_events(amqp_url, topology, [make_flight_event() for _ in range(50)])
    holder = _hold(warehouse_url, queue)
    result: list[DrainStats] = []
    config = DrainConfig(idle_seconds=0.5, max_seconds=30, lock_timeout=30)
    waiting = threading.Thread(
        target=lambda: result.append(
            drain_queue(amqp_url, warehouse_url, topology, "flights", config)
        )
    )
    try:
        waiting.start()
        time.sleep(1.5)
        # still waiting: nothing consumed, nothing written
        assert waiting.is_alive()
        assert _ready(amqp_url, queue) == sent
        assert query(warehouse_url, "SELECT count(*) FROM raw.flight_events")[0][0] == 0
    finally:
        holder.close()  # the first drain ends: its connection, and the lock, go
    waiting.join(30)
    assert not waiting.is_alive()
    (stats,) = result
    assert stats.received == stats.inserted == sent
    assert stats.stop_reason == STOP_QUEUE_EMPTY
    assert stats.lock_wait_seconds >= 1.5
    assert query(warehouse_url, "SELECT count(*) FROM raw.flight_events")[0][0] == sent


def test_a_drain_that_cannot_get_the_queue_drains_nothing(amqp_url, warehouse_url, topology):
    queue = topology.queue("flights")
    sent = publish_events(amqp_url, topology, [make_flight_event() for _ in range(5)])
    holder = _hold(warehouse_url, queue)
    try:
        stats = drain_queue(
            amqp_url, warehouse_url, topology, "flights", DrainConfig(lock_timeout=0.5)
        )
    finally:
        holder.close()
    assert stats.stop_reason == STOP_QUEUE_BUSY
    assert stats.received == 0
    assert _ready(amqp_url, queue) == sent  # every message is still there for the next drain


def test_drains_of_other_queues_do_not_wait(amqp_url, warehouse_url, topology):
    holder = _hold(warehouse_url, topology.queue("flights"))
    try:
        publish_events(amqp_url, topology, [make_flight_event() for _ in range(3)])
        stats = drain_queue(
            amqp_url,
            warehouse_url,
            topology,
            "positions",
            DrainConfig(idle_seconds=0.3, lock_timeout=0.5),
        )
    finally:
        holder.close()
    assert stats.stop_reason == STOP_QUEUE_EMPTY
    assert stats.lock_wait_seconds == 0.0


def test_a_quiet_queue_keeps_draining_while_its_group_has_traffic(
    amqp_url, warehouse_url, topology
):
    """Drained together, a sparse queue does not stop at its first quiet moment."""
    queue = topology.queue("flights")
    group = IdleGroup([queue, "busy-neighbour"])
    result: list[DrainStats] = []
    config = DrainConfig(idle_seconds=0.2, max_seconds=60)
    drainer = threading.Thread(
        target=lambda: result.append(
            drain_queue(amqp_url, warehouse_url, topology, "flights", config, group=group)
        )
    )
    drainer.start()
    try:
        time.sleep(1.0)  # five idle periods: alone it would have stopped
        assert drainer.is_alive()
        sent = publish_events(amqp_url, topology, [make_flight_event() for _ in range(3)])
        wait_until(
            lambda: query(warehouse_url, "SELECT count(*) FROM raw.flight_events")[0][0] == sent
        )
        assert drainer.is_alive()
    finally:
        group.mark("busy-neighbour", True)  # the neighbour goes quiet: now all are idle
        drainer.join(30)
    assert not drainer.is_alive()
    (stats,) = result
    assert stats.received == stats.inserted == 3
    assert stats.stop_reason == STOP_QUEUE_EMPTY


def test_a_drain_run_waits_for_its_turn_then_drains_all_its_queues(
    amqp_url, warehouse_url, topology
):
    flights = publish_events(amqp_url, topology, [make_flight_event() for _ in range(20)])
    positions = publish_events(amqp_url, topology, [make_position_event() for _ in range(30)])
    turn = _hold(warehouse_url, turn_lock_name(topology.prefix))  # the run before still drains
    result: list[dict] = []
    config = DrainConfig(idle_seconds=0.3, max_seconds=30, lock_timeout=30)
    waiting = threading.Thread(
        target=lambda: result.append(
            drain_together(amqp_url, warehouse_url, topology, ["flights", "positions"], config)
        )
    )
    try:
        waiting.start()
        time.sleep(1.0)
        assert waiting.is_alive()
        # no queue taken before the turn: the run before keeps them all
        assert _ready(amqp_url, topology.queue("flights")) == flights
        assert _ready(amqp_url, topology.queue("positions")) == positions
    finally:
        turn.close()
    waiting.join(30)
    (stats,) = result
    assert stats["flights"].received == flights
    assert stats["positions"].received == positions
    assert all(s.lock_wait_seconds >= 1.0 for s in stats.values())
    assert query(warehouse_url, "SELECT count(*) FROM raw.position_reports")[0][0] == positions


def test_a_drain_run_without_its_turn_drains_nothing(amqp_url, warehouse_url, topology):
    sent = publish_events(amqp_url, topology, [make_flight_event() for _ in range(4)])
    turn = _hold(warehouse_url, turn_lock_name(topology.prefix))
    try:
        stats = drain_together(
            amqp_url, warehouse_url, topology, ["flights"], DrainConfig(lock_timeout=0.5)
        )
    finally:
        turn.close()
    assert stats["flights"].stop_reason == STOP_QUEUE_BUSY
    assert stats["flights"].received == 0
    assert _ready(amqp_url, topology.queue("flights")) == sent
