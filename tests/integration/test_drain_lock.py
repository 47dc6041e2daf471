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


def _wait_for_lock_waiter(warehouse_url: str, name: str) -> float:
    """Wait until a session waits in Postgres for the drain lock `name`; returns when it was seen
    (time.monotonic(), the clock drains measure their wait with)."""

    def waiting() -> bool:
        sql = """SELECT count(*) FROM pg_locks
                 WHERE locktype = 'advisory' AND NOT granted AND objsubid = 2
                   AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
                   AND classid = %s::int::oid AND objid = hashtext(%s)::oid"""
        return query(warehouse_url, sql, (DRAIN_LOCK_NAMESPACE, name))[0][0] > 0

    wait_until(waiting, timeout=30, what=f"a drain waiting for the lock {name}")
    return time.monotonic()


class _WatchedGroup(IdleGroup):
    """An IdleGroup that counts the times `queue` found itself idle."""

    def __init__(self, queue: str, others: list[str]) -> None:
        super().__init__([queue, *others])
        self.queue = queue
        self.idle_marks = 0

    def mark(self, queue: str, idle: bool) -> bool:
        everyone = super().mark(queue, idle)
        if queue == self.queue and idle:
            self.idle_marks += 1
        return everyone


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
        seen_waiting = _wait_for_lock_waiter(warehouse_url, queue)
        # still waiting: nothing consumed, nothing written
        assert waiting.is_alive()
        assert _ready(amqp_url, queue) == sent
        assert query(warehouse_url, "SELECT count(*) FROM raw.flight_events")[0][0] == 0
    finally:
        released = time.monotonic()
        holder.close()  # the first drain ends: its connection, and the lock, go
    waiting.join(30)
    assert not waiting.is_alive()
    (stats,) = result
    assert stats.received == stats.inserted == sent
    assert stats.stop_reason == STOP_QUEUE_EMPTY
    assert stats.lock_wait_seconds >= round(released - seen_waiting, 3) - 0.001
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
    group = _WatchedGroup(queue, ["busy-neighbour"])
    result: list[DrainStats] = []
    config = DrainConfig(idle_seconds=0.2, max_seconds=60)
    drainer = threading.Thread(
        target=lambda: result.append(
            drain_queue(amqp_url, warehouse_url, topology, "flights", config, group=group)
        )
    )
    drainer.start()
    try:
        # idle twice: alone it would have stopped at the first
        wait_until(lambda: group.idle_marks >= 2 or not drainer.is_alive(), timeout=30)
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
        seen_waiting = _wait_for_lock_waiter(warehouse_url, turn_lock_name(topology.prefix))
        assert waiting.is_alive()
        # no queue taken before the turn: the run before keeps them all
        assert _ready(amqp_url, topology.queue("flights")) == flights
        assert _ready(amqp_url, topology.queue("positions")) == positions
    finally:
        released = time.monotonic()
        turn.close()
    waiting.join(30)
    (stats,) = result
    assert stats["flights"].received == flights
    assert stats["positions"].received == positions
    waited = round(released - seen_waiting, 3) - 0.001
    assert all(s.lock_wait_seconds >= waited for s in stats.values())
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
