"""Failover drill: the warehouse's primary crashes (kill -9) while events stream in, its
synchronous replica is promoted, and nothing is lost or written twice.

The pipeline writes through a multi-host DSN with `target_session_attrs=read-write` (it finds
whichever node is the primary) and the API reads through one with `prefer-standby` (the replica
while there is one, else the primary). Replication is synchronous with `remote_apply`: a drain
acks a batch to RabbitMQ only after its commit returned, and that commit returned only once the
replica had applied it. So every event the broker forgot is on the replica that takes over, and
every event whose commit was lost with the primary was never acked, comes back from the broker,
and is written once (raw dedups by message_id). With asynchronous replication the drain could ack
events the replica never received, and they would be lost at the failover.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2
import pytest

from api_service import queries
from latam_dagster.db import WarehouseUnavailable, migrate
from latam_dagster.ingest.drain import STOP_QUEUE_EMPTY, DrainConfig, DrainStats, drain_queue
from latam_dagster.ingest.topology import QUEUES, Topology
from latam_dagster.simulator import generate
from tests.conftest import query
from tests.ha.pg_cluster import PgCluster, PgNode, multi_host_url, pg_cluster
from tests.integration import api_fixtures as api
from tests.integration.api_expect import rows, walk
from tests.integration.ingest_helpers import RAW_TABLES, assert_queues_empty, publish_many

pytestmark = [pytest.mark.ha, pytest.mark.integration]

SEED = 20270314
SYSTEMS = 6
BEFORE = 1500  # events drained while the primary is healthy
DURING = 3000  # events published while the primary crashes and the replica takes over
CHUNK = 100  # the producer publishes (with confirms) this many at a time
KILL_AFTER_BATCHES = 6  # batches of the second stream written before the crash
DATABASE = "latam"
# small batches: many commits are in flight when the primary dies
CONFIG = DrainConfig(batch_size=100, prefetch=200, max_seconds=60, idle_seconds=0.3)
DEADLINE = 120.0  # the second stream's drains give up after this long (then the test fails)
FLIGHT_SQL = (
    f"SELECT {', '.join(queries.FLIGHT_COLUMNS)} FROM curated.fact_flight "
    "ORDER BY flight_date, flight_key"
)


class ReplicatedWarehouse(api.ApiWarehouse):
    """A warehouse whose API reads through its own multi-host DSN (`prefer-standby`), not the
    owner's (`read-write`) from which the shared fixtures derive the reader's URL."""

    def __init__(self, owner_url: str, data_docs_dir: Path, reader_dsn: str):
        super().__init__(owner_url, data_docs_dir)
        self.reader_dsn = reader_dsn

    @property
    def reader_url(self) -> str:
        return self.reader_dsn


@dataclass
class Drill:
    """The drill's two nodes and the DSNs over both: whichever is primary takes the writes."""

    primary: PgNode
    replica: PgNode
    cluster: PgCluster

    @property
    def nodes(self) -> list[PgNode]:
        return [self.primary, self.replica]

    @property
    def writer_url(self) -> str:
        return multi_host_url(self.nodes, DATABASE, "postgres", "read-write")

    def warehouse(self, docs: Path) -> ReplicatedWarehouse:
        reader = multi_host_url(self.nodes, DATABASE, "latam_api_reader", "prefer-standby")
        return ReplicatedWarehouse(self.writer_url, docs, reader)


@pytest.fixture
def drill() -> Iterator[Drill]:
    """A migrated warehouse on a primary with a synchronous streaming replica."""
    with pg_cluster() as cluster:
        primary = cluster.primary()
        replica = cluster.replica(primary)
        cluster.make_synchronous(primary, replica)
        migrate(primary.url(DATABASE))
        yield Drill(primary, replica, cluster)


@dataclass
class Timeline:
    """What the threads of the second stream saw, with monotonic times."""

    killed_at: float = 0.0
    batches: list[tuple[float, float]] = field(default_factory=list)  # (attempt start, written)
    failures: list[tuple[float, str, str]] = field(default_factory=list)  # (time, queue, error)
    probes: list[tuple[float, int]] = field(default_factory=list)  # (time, HTTP status)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def first_write_after_kill(self) -> float | None:
        """Seconds from the kill to the first batch committed by a drain that connected after
        it (a batch committed before the crash may be acked just after it)."""
        after = [done for began, done in self.batches if began > self.killed_at]
        return min(after) - self.killed_at if after else None

    def api_after_kill(self) -> tuple[float | None, int, float]:
        """(seconds from the kill to the first answer after it, failed probes after the kill,
        longest stretch without an answer from the kill on)."""
        after = [(t, status) for t, status in self.probes if t >= self.killed_at]
        answered = [t for t, status in after if status == 200]
        first = min(answered) - self.killed_at if answered else None
        failed = sum(status != 200 for _t, status in after)
        marks = [self.killed_at, *answered]
        gap = max((b - a for a, b in zip(marks, marks[1:], strict=False)), default=0.0)
        return first, failed, gap


def error_name(exc: BaseException) -> str:
    """The exception's class, and the one it was raised while handling: a drain that loses its
    connection mid-batch reports the rollback's InterfaceError over the OperationalError."""
    cause = exc.__cause__ or exc.__context__
    return type(exc).__name__ + (f" after {type(cause).__name__}" if cause else "")


def published_ids(messages) -> list[str]:
    return [m.event["message_id"] for m in messages]


def raw_id_counts(url: str) -> Counter:
    """How often each message_id is in raw, over every raw table."""
    union = " UNION ALL ".join(f"SELECT message_id::text FROM {t}" for t in RAW_TABLES)
    return Counter(r[0] for r in query(url, union))


def keep_draining(
    amqp_url: str,
    url: str,
    topo: Topology,
    family: str,
    timeline: Timeline,
    produced: threading.Event,
    abort: threading.Event,
    on_write: Callable[[], None],
) -> int:
    """Drain `family` again and again until the producer is done and the queue is empty,
    starting over whenever the database fails (as a scheduler reruns a failed drain). Returns the
    number of failed drains."""
    failed = 0
    began = time.monotonic()
    while not abort.is_set() and time.monotonic() - began < DEADLINE:
        attempt = time.monotonic()

        def written(_stats: DrainStats, attempt: float = attempt) -> None:
            with timeline.lock:
                timeline.batches.append((attempt, time.monotonic()))
            on_write()

        try:
            stats = drain_queue(amqp_url, url, topo, family, CONFIG, on_batch=written)
        except (psycopg2.Error, WarehouseUnavailable) as exc:
            failed += 1
            with timeline.lock:
                timeline.failures.append((time.monotonic(), family, error_name(exc)))
            # no primary yet: try again shortly (the broker keeps the unacked events)
            abort.wait(0.05)
            continue
        if produced.is_set() and stats.stop_reason == STOP_QUEUE_EMPTY:
            return failed
    raise AssertionError(f"{family}: still draining after {DEADLINE:.0f} s")


def produce(
    amqp_url: str, topo: Topology, messages, crashed: threading.Event, abort: threading.Event
) -> int:
    """Publish `messages` a chunk at a time, each chunk confirmed, like a steady source. The
    second half waits for the crash, so events arrive before, during and after the failover
    however fast the drains are."""
    sent = 0
    for start in range(0, len(messages), CHUNK):
        if start >= len(messages) // 2:
            crashed.wait(60)
        if abort.is_set():
            break
        chunk = messages[start : start + CHUNK]
        sent += publish_many(amqp_url, topo, ((m.body, m.routing_key) for m in chunk))
    return sent


def probe_api(client: api.AuthedClient, timeline: Timeline, stop: threading.Event) -> None:
    """Ask the API for a page of flights every 50 ms until told to stop."""
    while not stop.is_set():
        status = client.get("/api/v1/flights?limit=1").status_code
        with timeline.lock:
            timeline.probes.append((time.monotonic(), status))
        stop.wait(0.05)


def api_sessions(node: PgNode) -> int:
    """The API's sessions on `node` (its pool sets application_name=latam_api)."""
    sql = (
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE application_name = 'latam_api' AND datname = %s"
    )
    return node.sql(sql, (DATABASE,))[0][0]


def assert_api_serves_curated(client: api.AuthedClient, owner_url: str) -> list[dict]:
    """The API's flights are exactly curated.fact_flight as the owner reads it. Returns them."""
    expected = rows(owner_url, FLIGHT_SQL)
    assert expected, "the pipeline built no flights"
    got, _pages = walk(client, "/api/v1/flights", limit=500)
    assert got == expected
    return got


def test_primary_killed_mid_stream_replica_promoted_nothing_lost(
    drill: Drill, amqp_url: str, topology: Topology, tmp_path: Path
) -> None:
    messages = list(generate(SEED, systems=SYSTEMS, events=BEFORE + DURING))
    assert all(m.valid for m in messages)
    ids = published_ids(messages)
    assert len(set(ids)) == len(ids)
    writer_url = drill.writer_url
    warehouse = drill.warehouse(tmp_path / "docs")
    key = api.new_api_key(drill.primary.url(DATABASE))
    config = api.reader_config(warehouse, cursor_secret="ha-cursor-secret", testing=True)

    # 1. healthy: drain into the primary; the API answers from the replica
    publish_many(amqp_url, topology, ((m.body, m.routing_key) for m in messages[:BEFORE]))
    for family in QUEUES:
        drain_queue(amqp_url, writer_url, topology, family, CONFIG)
    api.build_downstream(writer_url)
    with api.running_app(config) as app:
        client = api.AuthedClient(app.test_client(), key)
        # remote_apply: what the primary committed is on the replica already, no waiting
        flights_before = assert_api_serves_curated(client, drill.primary.url(DATABASE))
        assert api_sessions(drill.replica) > 0
        assert api_sessions(drill.primary) == 0

        # 2. a second stream; the primary is killed once it is being written
        timeline = Timeline()
        produced, abort, stop_probe, kill_now, crashed = (threading.Event() for _ in range(5))

        def on_write() -> None:
            with timeline.lock:
                if len(timeline.batches) >= KILL_AFTER_BATCHES:
                    kill_now.set()

        probe_client = api.AuthedClient(app.test_client(), key)
        with ThreadPoolExecutor(max_workers=len(QUEUES) + 2) as pool:
            probe = pool.submit(probe_api, probe_client, timeline, stop_probe)
            producer = pool.submit(produce, amqp_url, topology, messages[BEFORE:], crashed, abort)
            drains = [
                pool.submit(
                    keep_draining,
                    *(amqp_url, writer_url, topology, family, timeline, produced, abort),
                    on_write,
                )
                for family in QUEUES
            ]
            try:
                assert kill_now.wait(60), "the second stream was never written"
                timeline.killed_at = time.monotonic()
                drill.primary.kill9()
                crashed.set()
                promote_seconds = drill.cluster.promote(drill.replica)
                assert producer.result(timeout=DEADLINE) == DURING
                produced.set()
                failed_drains = sum(d.result(timeout=DEADLINE) for d in drains)
            finally:
                crashed.set()
                produced.set()
                abort.set()
                stop_probe.set()
            probe.result()

    # 3. every published event exactly once, on the new primary; nothing left in the broker
    assert not drill.replica.in_recovery()
    counts = raw_id_counts(writer_url)
    assert [i for i, n in counts.items() if n > 1] == []
    assert set(counts) == set(ids)
    assert query(writer_url, "SELECT count(*) FROM raw.quarantine")[0][0] == 0
    assert_queues_empty(amqp_url, topology)
    assert failed_drains > 0, "no drain lost its database: the crash tested nothing"

    # 4. the API answers from the new primary: the running one never lost it, and a new one
    #    (a restarted pod) finds it through prefer-standby although no standby is left
    api.build_downstream(writer_url)
    with api.running_app(config) as app:
        client = api.AuthedClient(app.test_client(), key)
        flights_after = assert_api_serves_curated(client, writer_url)
        assert api_sessions(drill.replica) > 0
    assert flights_after != flights_before, "the events written after the crash changed nothing"

    api_back, api_failed, api_gap = timeline.api_after_kill()
    drain_back = timeline.first_write_after_kill()
    assert api_back is not None and drain_back is not None
    errors = Counter(name for _t, _q, name in timeline.failures)
    print(
        f"\nHA postgres: kill -> drain writing again {drain_back:.2f} s, "
        f"kill -> API answering again {api_back:.2f} s (API failed {api_failed} of "
        f"{len(timeline.probes)} probes, longest gap {api_gap:.2f} s), "
        f"promotion {promote_seconds:.2f} s; {len(ids)} events ({BEFORE} before, "
        f"{DURING} across the crash) in raw exactly once; {failed_drains} drain attempts "
        f"failed on the database ({dict(errors)}); {len(flights_after)} flights served"
    )
