"""Failover drill on a real 3-node RabbitMQ cluster: the leader of every quorum queue is killed
with SIGKILL in turn while events keep flowing, and raw ends with every event exactly once.

A publisher sends a steady stream of simulator events (persistent, publisher confirms); when its
node dies it reconnects to a live one and publishes again what was not confirmed. The platform's
own drain consumes every queue in a loop that starts over on a live node when its node dies. For
each drainable queue the drill kills its leader's node, times how long until the queue has a new
leader and an event published after the kill is in raw, and restarts the node before the next
kill, so that never more than one node of three is down. Republished events and redeliveries are
duplicates the drain recognises by message_id: raw still holds each confirmed event once.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pika.exceptions
import pytest

from latam_dagster.ingest.drain import STOP_QUEUE_EMPTY, DrainInterrupted, DrainStats
from latam_dagster.ingest.publish import Publisher
from latam_dagster.ingest.topology import (
    QUEUES,
    RAW_TABLE_OF_EVENT,
    BrokerUnavailable,
    Topology,
    declare_topology,
)
from latam_dagster.simulator import generate
from tests.conftest import RUN_ID, query
from tests.ha.rabbit_cluster import RabbitCluster, RabbitNode, available, rabbit_cluster
from tests.integration import ingest_helpers as ingest
from tests.tls_support import ServerFailed
from tests.waiting import eventually

pytestmark = [pytest.mark.ha, pytest.mark.integration]

PUBLISH_RATE = 150.0
"""Events per second the publisher aims at: a steady stream the loaded test machine keeps up with."""
UNROUTED_EVERY = 4
"""Every 4th event goes out under a routing key no binding matches, for the unrouted queue."""
DRAIN = {"idle_seconds": 1.0, "max_seconds": 20.0}
"""The drains' settings beyond `fast_config`: a drain returns at least every 20 s."""
RECOVERY_TIMEOUT = 60.0
RECONNECT_TIMEOUT = 60.0


@dataclass
class Sent:
    """The events published for one queue, in order: (first attempt, message_id, raw table)."""

    events: list[tuple[float, str, str]] = field(default_factory=list)

    def since(self, moment: float) -> dict[str, list[str]]:
        """The message_ids first published after `moment`, by raw table."""
        found: dict[str, list[str]] = {}
        for at, message_id, table in self.events[:]:  # a copy: the publisher appends meanwhile
            if at > moment:
                found.setdefault(table, []).append(message_id)
        return found


class StreamPublisher(threading.Thread):
    """Publishes simulator events at a steady pace, each one until the broker confirms it.

    When a publish fails (its node died, or the broker refused it) the publisher reconnects
    (open_connection takes the first node of the list that answers) and publishes the same event
    again: it may already be in its queue, which makes a duplicate, never a loss."""

    def __init__(self, url: str, topo: Topology) -> None:
        super().__init__(name="ha-publisher", daemon=True)
        self.url, self.topo = url, topo
        self.sent = {family: Sent() for family in QUEUES}
        self.table_of: dict[str, str] = {}
        self.confirmed: set[str] = set()
        self.republished = self.reconnects = 0
        self.finish = threading.Event()  # stop after the event being published
        self.abort = threading.Event()  # stop now (a failed test)
        self.error: BaseException | None = None
        self._publisher: Publisher | None = None

    def run(self) -> None:
        try:
            self._stream()
        except BaseException as exc:  # the test reads it
            self.error = exc
        finally:
            self._disconnect()

    def _stream(self) -> None:
        pace = 1.0 / PUBLISH_RATE
        next_at = time.monotonic()
        for n, message in enumerate(generate(seed=random.getrandbits(32))):
            if self.finish.is_set() or self.abort.is_set():
                return
            event = message.event
            assert event is not None  # no invalid share asked for
            message_id, table = event["message_id"], RAW_TABLE_OF_EVENT[event["event_type"]]
            if n % UNROUTED_EVERY == UNROUTED_EVERY - 1:
                family, routing_key = "unrouted", f"unrouted.{event['source_system']}"
            else:
                family, routing_key = (
                    ingest.FAMILY_OF_TYPE[event["event_type"]],
                    message.routing_key,
                )
            self.table_of[message_id] = table
            self.sent[family].events.append((time.monotonic(), message_id, table))
            self._publish_until_confirmed(message.body, routing_key)
            self.confirmed.add(message_id)
            next_at = max(next_at + pace, time.monotonic() - 1.0)
            self.abort.wait(max(0.0, next_at - time.monotonic()))

    def _publish_until_confirmed(self, body: bytes, routing_key: str) -> None:
        deadline = time.monotonic() + RECONNECT_TIMEOUT
        attempted = False
        while True:
            try:
                if self._publisher is None:
                    self._publisher = Publisher(self.url, self.topo, declare_topology=False)
                if attempted:
                    self.republished += 1
                attempted = True
                self._publisher.publish_body(body, routing_key)
                return
            except (BrokerUnavailable, pika.exceptions.AMQPError):
                self._disconnect()
                if self.abort.is_set() or time.monotonic() > deadline:
                    raise
                self.reconnects += 1
                self.abort.wait(0.1)  # a node that just died: its clients come back in turn

    def _disconnect(self) -> None:
        publisher, self._publisher = self._publisher, None
        if publisher is not None:
            with contextlib.suppress(pika.exceptions.AMQPError):  # its node is gone
                publisher.close()


class DrainLoop(threading.Thread):
    """The platform's drain of one queue, started again whenever it returns; when the broker
    interrupts it (its node died) it starts over on the first live node of its URL list."""

    def __init__(self, url: str, warehouse_url: str, topo: Topology, family: str) -> None:
        super().__init__(name=f"ha-drain-{family}", daemon=True)
        self.url, self.warehouse_url, self.topo, self.family = url, warehouse_url, topo, family
        self.totals = DrainStats(queue=topo.queue(family))
        self.interruptions = 0
        self.finish = threading.Event()  # stop once a drain found the queue empty
        self.abort = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.abort.is_set():
                try:
                    stats = ingest.drain(
                        self.url, self.warehouse_url, self.topo, self.family, **DRAIN
                    )
                except (DrainInterrupted, BrokerUnavailable) as exc:
                    self.interruptions += 1
                    if isinstance(exc, DrainInterrupted):
                        self._count(exc.stats)
                    self.abort.wait(0.2)  # the broker moves the queue's leader meanwhile
                    continue
                self._count(stats)
                if self.finish.is_set() and stats.stop_reason == STOP_QUEUE_EMPTY:
                    return
        except BaseException as exc:  # the test reads it
            self.error = exc

    def _count(self, stats: DrainStats) -> None:
        for name in ("received", "inserted", "duplicates", "quarantined"):
            setattr(self.totals, name, getattr(self.totals, name) + getattr(stats, name))


@dataclass(frozen=True)
class Recovery:
    queue: str
    killed: str
    new_leader: str
    leader_seconds: float
    drained_seconds: float


def arrived(warehouse_url: str, ids_by_table: dict[str, list[str]]) -> int:
    """How many of these message_ids raw holds."""
    total = 0
    for table, ids in ids_by_table.items():
        sql = f"SELECT count(*) FROM {table} WHERE message_id = ANY(%s::uuid[])"
        total += query(warehouse_url, sql, (ids,))[0][0]
    return total


def kill_leader(
    cluster: RabbitCluster, queue: str, sent: Sent, warehouse_url: str
) -> tuple[RabbitNode, Recovery]:
    """Kill the node that leads `queue` and time its recovery: a new leader on another node, and
    an event published after the kill in raw (the drain consumes again). Returns the dead node."""
    leader = eventually(
        lambda: (cluster.queues("leader").get(queue) or {}).get("leader"),
        RECOVERY_TIMEOUT,
        f"{queue} has a leader",
        interval=0.5,
        errors=(ServerFailed,),
    )
    victim = cluster.node(leader)
    # never more than one node down: every quorum queue must keep a majority without the victim
    eventually(
        lambda: (
            cluster.ctl(victim, "check_if_node_is_quorum_critical", tool="rabbitmq-queues")
            is not None
        ),
        RECOVERY_TIMEOUT,
        f"{victim.name} not quorum-critical",
        interval=0.5,
        errors=(ServerFailed,),
    )
    killed_at = cluster.kill(victim)
    with ThreadPoolExecutor(1) as pool:  # the CLI is slow to start: it polls on a side thread
        new_leader = pool.submit(await_new_leader, cluster, queue, victim)
        ingest.wait_until(
            lambda: arrived(warehouse_url, sent.since(killed_at)),
            timeout=RECOVERY_TIMEOUT,
            interval=0.1,
            what=f"an event of {queue} published after the kill in raw",
        )
        drained_at = time.monotonic()
        leader, leader_at = new_leader.result(RECOVERY_TIMEOUT)
    return victim, Recovery(
        queue,
        victim.name,
        leader,
        round(leader_at - killed_at, 2),
        round(drained_at - killed_at, 2),
    )


def await_new_leader(cluster: RabbitCluster, queue: str, dead: RabbitNode) -> tuple[str, float]:
    """The node the cluster names as `queue`'s leader once it is not `dead`, and when."""

    def other_leader() -> str | None:
        # while no member leads it, a live node may leave the queue out of its list
        row = cluster.queues("leader").get(queue)
        leader = row.get("leader") if row else None
        return leader if leader and leader != dead.name else None

    leader = eventually(
        other_leader,
        RECOVERY_TIMEOUT,
        f"{queue} led by a node other than {dead.name}",
        interval=0.1,
        errors=(ServerFailed,),
    )
    return leader, time.monotonic()


@pytest.fixture
def cluster() -> Iterator[RabbitCluster]:
    if reason := available():
        pytest.skip(reason)
    with rabbit_cluster(RUN_ID) as formed:
        yield formed


@pytest.mark.timeout(270)
def test_killing_each_queue_leader_loses_and_doubles_nothing(
    cluster: RabbitCluster, warehouse_url: str
) -> None:
    started = time.monotonic()
    topo = Topology(prefix=f"ha{RUN_ID}")
    declare_topology(cluster.url, topo)
    queues = cluster.queues("type", "members")
    for name in [*topo.queues, topo.dead_queue]:
        assert queues[name]["type"] == "quorum", queues[name]
        assert set(queues[name]["members"]) == cluster.names, f"{name} does not span the cluster"

    publisher = StreamPublisher(cluster.url, topo)
    urls = cluster.url.split(",")
    drains = [
        # each drain's list starts at another node, so that every kill cuts some drain's link
        DrainLoop(",".join(urls[i:] + urls[:i]), warehouse_url, topo, family)
        for i, family in enumerate(QUEUES)
    ]
    workers: list[StreamPublisher | DrainLoop] = [publisher, *drains]
    for worker in workers:
        worker.start()
    recoveries: list[Recovery] = []
    try:
        for family in QUEUES:  # every queue flows before the first kill
            ingest.wait_until(
                lambda f=family: arrived(warehouse_url, publisher.sent[f].since(0.0)),
                timeout=60,
                what=f"first {family} events in raw",
            )
        for family in QUEUES:
            victim, recovery = kill_leader(
                cluster, topo.queue(family), publisher.sent[family], warehouse_url
            )
            recoveries.append(recovery)
            cluster.restart(victim)

        publisher.finish.set()
        publisher.join(RECONNECT_TIMEOUT + 10)
        assert not publisher.is_alive(), "the publisher did not finish"
        assert publisher.error is None, f"publisher failed: {publisher.error!r}"
        confirmed = publisher.confirmed
        ingest.wait_until(
            lambda: (
                arrived(warehouse_url, by_table(publisher.table_of, confirmed)) == len(confirmed)
            ),
            timeout=60,
            interval=0.5,
            what=f"all {len(confirmed)} confirmed events in raw",
        )
        for loop in drains:
            loop.finish.set()
        for loop in drains:
            loop.join(60)
            assert not loop.is_alive(), f"{loop.name} did not finish"
            assert loop.error is None, f"{loop.name} failed: {loop.error!r}"
    finally:
        for worker in workers:
            worker.abort.set()
        for worker in workers:
            worker.join(30)

    raw = {
        table: [row[0] for row in query(warehouse_url, f"SELECT message_id::text FROM {table}")]
        for table in ingest.RAW_TABLES
    }
    expected = by_table(publisher.table_of, confirmed)
    for table, ids in raw.items():
        assert len(ids) == len(set(ids)), f"{table} holds a message_id twice"
        lost, extra = set(expected.get(table, [])) - set(ids), set(ids) - confirmed
        assert not lost, f"{len(lost)} confirmed events missing from {table}: {sorted(lost)[:5]}"
        assert not extra, f"{table} holds {len(extra)} events never confirmed: {sorted(extra)[:5]}"
    assert query(warehouse_url, "SELECT count(*) FROM raw.quarantine")[0][0] == 0
    ingest.assert_queues_empty(cluster.url, topo)  # the dead-letter queue included

    totals = {
        name: sum(getattr(loop.totals, name) for loop in drains)
        for name in ("received", "inserted", "duplicates")
    }
    lines = [
        f"{len(cluster.nodes)} nodes formed in {cluster.formed_seconds:.1f} s, "
        f"{len(recoveries)} leader nodes killed with SIGKILL (one down at a time), "
        f"drill {time.monotonic() - started:.1f} s",
        f"published {len(confirmed)} events, all confirmed; {publisher.republished} "
        f"republished after a failed publish, {publisher.reconnects} publisher reconnects",
        f"drains received {totals['received']}, inserted {totals['inserted']}, duplicates "
        f"counted {totals['duplicates']}, interrupted {sum(d.interruptions for d in drains)}x",
        *(
            f"{r.queue}: leader {r.killed} killed, new leader {r.new_leader} seen after "
            f"{r.leader_seconds:.2f} s, drained again after {r.drained_seconds:.2f} s"
            for r in recoveries
        ),
        f"recovery total {sum(r.drained_seconds for r in recoveries):.2f} s; raw holds each "
        f"confirmed message_id once, dead-letter and every queue empty",
    ]
    print("\n" + "\n".join(f"HA rabbitmq: {line}" for line in lines))


def by_table(table_of: dict[str, str], ids: set[str]) -> dict[str, list[str]]:
    """`ids` grouped by the raw table their event type belongs to."""
    grouped: dict[str, list[str]] = {}
    for message_id in ids:
        grouped.setdefault(table_of[message_id], []).append(message_id)
    return grouped
