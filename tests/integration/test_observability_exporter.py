"""The exporter's values against the real broker, warehouse and Dagster instance.

Each collector reads a world this test built (simulated events published to an isolated topology,
drained into an isolated warehouse, transformed by the pipeline's own code) and must report what
the broker and the database say directly.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import pytest
from dagster import (
    AssetCheckResult,
    asset,
    asset_check,
    instance_for_test,
    job,
    materialize,
    op,
)

from latam_dagster.assets.raw import raw_assets
from latam_dagster.db import ensure_database
from latam_dagster.ingest.drain import DrainConfig, drain_queue
from latam_dagster.ingest.topology import QUEUES, queue_depths
from latam_dagster.observability import broker as broker_module
from latam_dagster.observability import warehouse as warehouse_module
from latam_dagster.observability.broker import BrokerCollector
from latam_dagster.observability.config import management_url_from_amqp, vhost_of
from latam_dagster.observability.dagster_state import DRAIN_TAG, DagsterCollector
from latam_dagster.observability.exporter import Exporter
from latam_dagster.observability.warehouse import WarehouseCollector
from latam_dagster.resources import RabbitMQResource, WarehouseResource
from latam_dagster.settings import normalize_pg_url
from latam_dagster.transform.airports import load_dim_airport
from latam_dagster.transform.curated import update_all
from latam_dagster.transform.marts import MARTS, refresh_mart
from tests.conftest import query
from tests.integration.observability_support import (
    by_label,
    eventually,
    management_available,
    publish,
    samples,
    simulated,
    value,
    wait_for_depth,
)

pytestmark = pytest.mark.integration
DRAIN = DrainConfig(batch_size=500, prefetch=1000, max_seconds=60, idle_seconds=0.3)


@pytest.fixture
def management(amqp_url: str) -> str:
    if not management_available(amqp_url):
        pytest.fail(
            "the RabbitMQ management API does not answer: run infra/ci/install-tools.sh "
            "(it enables rabbitmq_management)"
        )
    return management_url_from_amqp(amqp_url)


class _LaterClock:
    """A stand-in for a collector module's `time`: time() runs `ahead` seconds early, so a
    collection sees time pass without the test waiting for it."""

    def __init__(self, ahead: float) -> None:
        self.ahead = ahead

    def time(self) -> float:
        return time.time() + self.ahead

    def __getattr__(self, name: str):
        return getattr(time, name)


def _drain_all(amqp_url: str, warehouse_url: str, topology) -> None:
    for family in QUEUES:
        drain_queue(amqp_url, warehouse_url, topology, family, DRAIN)


def test_queue_depth_and_oldest_message_age(
    amqp_url, topology, management, warehouse_url, monkeypatch
):
    collector = BrokerCollector(amqp_url, topology, vhost_of(amqp_url), management)
    exporter = Exporter([collector])
    exporter.collect_once()  # the publish counters' history starts before the traffic
    before = time.time()
    published = publish(amqp_url, topology, simulated(11, 400, invalid=0.05))
    wait_for_depth(amqp_url, topology, published)
    depths = queue_depths(amqp_url, topology)

    # the broker's statistics lag by its statistics interval (5 s), and more on a loaded machine:
    # the loop ends as soon as they count every message, the deadline only bounds a failure
    deadline = time.monotonic() + 90
    while True:
        exporter.collect_once()
        found = samples(exporter)
        counted = by_label(found, "latam_queue_published_messages_total", "queue")
        if sum(counted.values()) >= published or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    caught_up = time.time()
    assert sum(counted.values()) == published
    assert by_label(found, "latam_queue_depth_messages", "queue") == {
        **depths,
        topology.dead_queue: 0,
    }
    assert value(found, "latam_rabbitmq_management_up") == 1
    assert value(found, "latam_exporter_collect_success", source="rabbitmq") == 1

    # two seconds on, for the collector
    monkeypatch.setattr(broker_module, "time", _LaterClock(2.0))
    exporter.collect_once()
    found = samples(exporter)
    ages = by_label(found, "latam_queue_oldest_message_age_seconds", "queue")
    now = time.time() + 2.0
    for queue, depth in depths.items():
        if depth:  # waited at least since the counters caught up, at most since the publish began
            assert now - caught_up - 0.5 <= ages[queue] <= now - before + 0.5, queue
        else:
            assert ages[queue] == 0, queue
    assert topology.dead_queue not in ages  # dead letters arrive without a publish

    # once drained, nothing waits
    _drain_all(amqp_url, warehouse_url, topology)
    deadline = time.monotonic() + 30
    while True:
        exporter.collect_once()
        ages = by_label(samples(exporter), "latam_queue_oldest_message_age_seconds", "queue")
        if not any(ages.values()) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert ages == dict.fromkeys(topology.queues, 0.0)


def _epoch(ts: datetime | None) -> float | None:
    return ts.timestamp() if ts is not None else None


def _expected_inserted(url: str, topology) -> dict[tuple[str, str], int]:
    """(queue, source_system) -> raw rows, straight from the database."""
    found: dict[tuple[str, str], int] = {}
    for family, (_pattern, table, etype) in QUEUES.items():
        if not table:
            continue
        prefix = {"flight_status": "flight", "passenger_event": "passenger"}.get(etype, "position")
        for source, routed, count in query(
            url,
            f"""SELECT source_system, coalesce(routing_key LIKE %s, true), count(*)
                FROM {table} GROUP BY 1, 2""",
            (prefix + ".%",),
        ):
            queue = topology.queue(family if routed else "unrouted")
            found[(queue, source)] = found.get((queue, source), 0) + count
    return found


def _inserted(found: dict) -> dict[tuple[str, str], float]:
    return {
        (dict(k)["queue"], dict(k)["source_system"]): v
        for (name, k), v in found.items()
        if name == "latam_ingest_inserted_events_total"
    }


def test_warehouse_metrics_match_the_database(amqp_url, topology, warehouse_url, monkeypatch):
    published = publish(amqp_url, topology, simulated(12, 1500, systems=5, invalid=0.04))
    # a valid event under a routing key no binding matches lands in raw through `unrouted`
    published += publish(
        amqp_url, topology, [(body, "misrouted.ops_x") for body, _ in simulated(13, 20)]
    )
    wait_for_depth(amqp_url, topology, published)
    _drain_all(amqp_url, warehouse_url, topology)
    collector = WarehouseCollector(warehouse_url, topology, exact_count_max_rows=10_000_000)
    exporter = Exporter([collector])
    assert exporter.collect_once() == {"postgres": True}
    found = samples(exporter)

    rows = by_label(found, "latam_table_rows", "table")
    for table in ("raw.flight_events", "raw.passenger_events", "raw.position_reports",
                  "raw.quarantine", "curated.fact_flight"):  # fmt: skip
        assert rows[table] == query(warehouse_url, f"SELECT count(*) FROM {table}")[0][0], table

    def counts_match() -> dict:
        exporter.collect_once()
        now = samples(exporter)
        assert _inserted(now) == _expected_inserted(warehouse_url, topology)
        return now

    found = eventually(counts_match)
    assert any(q == topology.queue("unrouted") for q, _ in _inserted(found))

    quarantined = {
        (dict(k)["queue"], dict(k)["source_system"]): v
        for (name, k), v in found.items()
        if name == "latam_ingest_quarantined_messages_total"
    }
    expected_q = query(
        warehouse_url,
        """SELECT queue, split_part(coalesce(routing_key, ''), '.', 2), count(*)
           FROM raw.quarantine GROUP BY 1, 2""",
    )
    assert sum(quarantined.values()) == sum(c for *_k, c in expected_q) > 0

    newest = by_label(found, "latam_table_newest_event_timestamp_seconds", "table")
    for table in ("raw.flight_events", "raw.position_reports"):
        expected = _epoch(query(warehouse_url, f"SELECT max(event_time) FROM {table}")[0][0])
        assert newest[table] == pytest.approx(expected), table

    # raw rows wait for the curated tables: a processing lag shows, then clears after the update
    lag = by_label(found, "latam_table_processing_lag_seconds", "table")
    assert lag["curated.fact_flight"] > 0
    load_dim_airport(warehouse_url)

    def caught_up() -> dict:
        update_all(warehouse_url)
        exporter.collect_once()
        now = samples(exporter)
        lag = by_label(now, "latam_table_processing_lag_seconds", "table")
        for table in ("curated.fact_flight", "curated.flight_passenger",
                      "curated.flight_passenger_load", "curated.aircraft_position_latest"):  # fmt: skip
            assert lag[table] == 0, table
        return now

    found = eventually(caught_up, every=2.0)
    newest = by_label(found, "latam_table_newest_event_timestamp_seconds", "table")
    expected = query(warehouse_url, "SELECT max(last_event_time) FROM curated.fact_flight")[0][0]
    assert newest["curated.fact_flight"] == pytest.approx(_epoch(expected))

    # the marts have not seen the changed flight dates yet
    today = datetime.now(UTC).date()
    pending_dates = [
        d
        for (d,) in query(warehouse_url, "SELECT flight_date FROM curated.changed_flight_dates")
        if d <= today
    ]
    pending = by_label(found, "latam_mart_pending_partitions", "table")
    assert pending == {f"marts.{m}": len(pending_dates) for m in MARTS}
    assert len(pending_dates) > 0
    monkeypatch.setattr(warehouse_module, "time", _LaterClock(1.0))  # a second on
    exporter.collect_once()
    mart_lag = by_label(samples(exporter), "latam_table_processing_lag_seconds", "table")
    assert mart_lag["marts.route_daily_performance"] >= 1.0
    for mart in MARTS:
        refresh_mart(warehouse_url, mart, min(pending_dates), max(pending_dates), only_pending=True)
    exporter.collect_once()
    found = samples(exporter)
    assert set(by_label(found, "latam_mart_pending_partitions", "table").values()) == {0}
    assert (
        by_label(found, "latam_table_processing_lag_seconds", "table")[
            "marts.route_daily_performance"
        ]
        == 0
    )

    # counting is incremental: new rows add exactly their number, old ones are not recounted
    more = publish(amqp_url, topology, simulated(14, 300, systems=5))
    wait_for_depth(amqp_url, topology, more)
    _drain_all(amqp_url, warehouse_url, topology)
    eventually(counts_match)


def _conflict(url: str, message_id: str, table: str, source: str, times_seen: int = 1) -> None:
    """Record one conflicting body of `message_id`, as the drain does (first body kept)."""
    query(
        url,
        """INSERT INTO raw.message_id_conflicts (message_id, raw_table, source_system,
               kept_sha256, conflicting_sha256, times_seen)
           VALUES (%s, %s, %s, sha256(%s::bytea), sha256(gen_random_uuid()::text::bytea), %s)""",
        (message_id, table, source, message_id.encode(), times_seen),
    )


def test_message_id_conflicts_are_counted_by_table_and_source(warehouse_url, topology):
    exporter = Exporter([WarehouseCollector(warehouse_url, topology)])
    assert exporter.collect_once() == {"postgres": True}
    found = samples(exporter)
    assert not by_label(found, "latam_ingest_message_id_conflicts_total", "table")

    first, second, third = (str(uuid.uuid4()) for _ in range(3))
    _conflict(warehouse_url, first, "raw.flight_events", "sabre", times_seen=3)
    _conflict(warehouse_url, first, "raw.flight_events", "sabre")  # a third body, same id
    _conflict(warehouse_url, second, "raw.flight_events", "sabre", times_seen=2)
    _conflict(warehouse_url, third, "raw.passenger_events", "amadeus")
    # a source_system outside the contract's pattern never becomes a label value
    _conflict(warehouse_url, str(uuid.uuid4()), "raw.position_reports", "JUAN PEREZ AB1234567")
    _conflict(warehouse_url, str(uuid.uuid4()), "raw.position_reports", "Adsb Feed!", 4)

    def conflicts(found: dict, name: str) -> dict[tuple[str, str], float]:
        return {
            (dict(k)["table"], dict(k)["source_system"]): v
            for (n, k), v in found.items()
            if n == name
        }

    assert exporter.collect_once() == {"postgres": True}
    found = samples(exporter)
    assert conflicts(found, "latam_ingest_message_id_conflicts_total") == {
        ("raw.flight_events", "sabre"): 6,
        ("raw.passenger_events", "amadeus"): 1,
        ("raw.position_reports", "unknown"): 5,
    }
    assert conflicts(found, "latam_ingest_conflicting_message_ids") == {
        ("raw.flight_events", "sabre"): 2,
        ("raw.passenger_events", "amadeus"): 1,
        ("raw.position_reports", "unknown"): 2,
    }
    assert "JUAN" not in exporter.exposition().decode()

    # the same conflicting body again: the counter goes up, the distinct ids do not
    query(
        warehouse_url,
        """UPDATE raw.message_id_conflicts SET times_seen = times_seen + 1,
               last_seen_at = now() WHERE message_id = %s""",
        (third,),
    )
    exporter.collect_once()
    found = samples(exporter)
    where = {"table": "raw.passenger_events", "source_system": "amadeus"}
    assert value(found, "latam_ingest_message_id_conflicts_total", **where) == 2
    assert value(found, "latam_ingest_conflicting_message_ids", **where) == 1

    # a warehouse migrated before the conflicts table existed: no metric, no failure
    query(warehouse_url, "DROP TABLE raw.message_id_conflicts")
    assert exporter.collect_once() == {"postgres": True}
    found = samples(exporter)
    assert not conflicts(found, "latam_ingest_message_id_conflicts_total")
    assert value(found, "latam_exporter_collect_success", source="postgres") == 1


@pytest.fixture
def dagster_storage_url(empty_db_url: str) -> str:
    """A Postgres database for the Dagster instance, as in production (dagster-postgres)."""
    ensure_database(empty_db_url)
    return normalize_pg_url(empty_db_url)


def test_dagster_metrics_from_the_instance(amqp_url, topology, warehouse_url, dagster_storage_url):
    published = publish(amqp_url, topology, simulated(15, 500, systems=3, invalid=0.05))
    wait_for_depth(amqp_url, topology, published)

    @asset
    def sample_table() -> int:
        return 1

    @asset_check(asset=sample_table, blocking=True)
    def sample_keys_unique() -> AssetCheckResult:
        return AssetCheckResult(
            passed=False, metadata={"expectations_failed": 2, "unexpected_count": 5}
        )

    @op
    def explode() -> None:
        raise RuntimeError("broker went away")

    @job(tags={DRAIN_TAG: "flights,positions"})  # a run that drained two queues
    def broken_drain_job() -> None:
        explode()

    storage = {"storage": {"postgres": {"postgres_url": dagster_storage_url}}}
    with instance_for_test(overrides=storage) as instance:
        resources = {
            "rabbitmq": RabbitMQResource(amqp_url=amqp_url, prefix=topology.prefix),
            "warehouse": WarehouseResource(url=warehouse_url),
        }
        result = materialize(raw_assets, resources=resources, instance=instance)
        assert result.success
        received = {
            m.metadata["queue"].value: m.metadata["received"].value
            for m in result.asset_materializations_for_node("drain_queues")
        }
        assert len(received) == 4  # one drain step, one materialization per queue
        assert sum(received.values()) == published
        broken_drain_job.execute_in_process(instance=instance, raise_on_error=False)
        materialize([sample_table, sample_keys_unique], instance=instance, raise_on_error=False)

        exporter = Exporter([DagsterCollector(lambda: instance, topology.prefix)])
        assert exporter.collect_once() == {"dagster": True}
        found = samples(exporter)

        assert by_label(found, "latam_drain_received_messages_total", "queue") == received
        runs = {
            (dict(k)["queue"], dict(k)["status"]): v
            for (name, k), v in found.items()
            if name == "latam_drain_runs_total"
        }
        assert runs[(topology.queue("flights"), "failure")] == 1
        assert runs[(topology.queue("positions"), "failure")] == 1
        assert runs[(topology.queue("passengers"), "failure")] == 0  # exists before any failure
        assert (
            value(found, "latam_dagster_runs_total", job="broken_drain_job", status="failure") == 1
        )
        assert (
            value(
                found,
                "latam_quality_check_passed",
                asset="sample_table",
                check="sample_keys_unique",
                blocking="true",
                check_severity="error",
            )
            == 0
        )
        assert (
            value(
                found,
                "latam_quality_failing_expectations",
                asset="sample_table",
                check="sample_keys_unique",
            )
            == 2
        )
        assert (
            value(
                found,
                "latam_quality_unexpected_rows",
                asset="sample_table",
                check="sample_keys_unique",
            )
            == 5
        )
        ages = by_label(found, "latam_asset_materialization_age_seconds", "asset")
        assert 0 <= ages["raw/flight_events"] < 120

        # a second collection counts nothing twice
        exporter.collect_once()
        again = samples(exporter)
        assert by_label(again, "latam_drain_received_messages_total", "queue") == received
        assert (
            value(again, "latam_dagster_runs_total", job="broken_drain_job", status="failure") == 1
        )
