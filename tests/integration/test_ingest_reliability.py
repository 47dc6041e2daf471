"""Effectively-once ingestion on the real broker and warehouse.

Duplicates, a drain killed with SIGKILL, a broker connection forced closed, delivery order,
wrong routing keys and values the contract allows but Postgres refuses: raw always ends up with
every published message exactly once.
"""

from __future__ import annotations

import functools
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pika.exceptions
import psycopg2
import pytest

from latam_dagster.contracts import validate_body
from latam_dagster.ingest.drain import DrainInterrupted
from latam_dagster.ingest.topology import Topology, declare_topology, delete_topology
from latam_dagster.ingest.writer import RawWriter, Rejected, Valid
from tests.conftest import ROOT, _admin_exec, _db_url, drop_database, query
from tests.integration.ingest_helpers import (
    BAD_CASES_BY_ID,
    RAW_TABLES,
    assert_queues_empty,
    drain,
    drain_all,
    dumps,
    make_flight_event,
    make_passenger_event,
    make_position_event,
    publish_bulk,
    publish_events,
    publish_many,
    queue_state,
    wait_until,
)

pytestmark = pytest.mark.integration


def count(url: str, table: str = "raw.flight_events") -> int:
    return query(url, f"SELECT count(*) FROM {table}")[0][0]


def message_ids(url: str, table: str = "raw.flight_events") -> list[str]:
    return [r[0] for r in query(url, f"SELECT message_id::text FROM {table}")]


def flight_bodies(n: int) -> tuple[list[bytes], set[str]]:
    events = [
        make_flight_event(payload={"flight_number": 1 + i % 9999, "status": "departed"})
        for i in range(n)
    ]
    return [dumps(e) for e in events], {e["message_id"] for e in events}


def start_drain_process(
    amqp_url: str,
    warehouse_url: str,
    topo: Topology,
    *,
    batch_size: int,
    prefetch: int,
    kill_self_after_commit_of_batch: int = 0,
    log_path: Path,
) -> subprocess.Popen:
    """`drain_queue` on the flights queue in a separate Python process.

    With `kill_self_after_commit_of_batch=k` the process SIGKILLs itself right after the k-th
    batch is committed and before it is acked (the worst moment), after printing that batch's
    valid/rejected counts on stdout."""
    script = textwrap.dedent(
        """
        import os, signal, sys
        from latam_dagster.ingest import writer
        from latam_dagster.ingest.drain import DrainConfig, drain_queue
        from latam_dagster.ingest.topology import Topology

        amqp_url, warehouse_url, prefix, batch, prefetch, kill_at = sys.argv[1:7]
        kill_at = int(kill_at)
        original_write = writer.RawWriter.write
        batches = 0

        def write(self, valid, rejected, queue):
            global batches
            result = original_write(self, valid, rejected, queue)  # commits
            batches += 1
            if batches == kill_at:
                print(f"KILLED-AFTER-COMMIT valid={len(valid)} rejected={len(rejected)}", flush=True)
                os.kill(os.getpid(), signal.SIGKILL)
            return result

        writer.RawWriter.write = write
        config = DrainConfig(batch_size=int(batch), prefetch=int(prefetch), idle_seconds=1.0,
                             max_seconds=120)
        stats = drain_queue(amqp_url, warehouse_url, Topology(prefix=prefix), "flights", config)
        print("FINISHED", stats.as_dict(), flush=True)
        """
    )
    args = [amqp_url, warehouse_url, topo.prefix, batch_size, prefetch]
    return subprocess.Popen(
        [sys.executable, "-c", script, *map(str, args), str(kill_self_after_commit_of_batch)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=log_path.open("wb"),
        text=True,
    )


@pytest.fixture
def drain_process(amqp_url, warehouse_url, topology, tmp_path):
    """`start_drain_process` on the test's broker, warehouse and topology, logging to
    `drain.log` in the test's tmp_path."""
    return functools.partial(
        start_drain_process, amqp_url, warehouse_url, topology, log_path=tmp_path / "drain.log"
    )


def wait_for_no_consumers(amqp_url: str, queue: str) -> None:
    """The broker has noticed the dead consumer and requeued its unacked messages."""
    wait_until(lambda: queue_state(amqp_url, queue)[1] == 0, timeout=30, what="consumers gone")


# --- 1. duplicates -------------------------------------------------------------------------------


@pytest.mark.parametrize("batch_size", [1, 50])
def test_same_message_three_times_gives_one_row(batch_size, amqp_url, warehouse_url, topology):
    event, other = make_flight_event(), make_passenger_event()
    body = dumps(event)
    publish_many(
        amqp_url,
        topology,
        [(body, "flight.sabre"), (body, "flight.sabre"), (dumps(other), "flight.x")]
        + [(body, "flight.sabre")],
    )

    stats = drain(amqp_url, warehouse_url, topology, "flights", batch_size=batch_size)

    assert stats.received == 4
    assert stats.inserted == 2
    assert stats.duplicates == 2
    assert stats.quarantined == 0
    assert message_ids(warehouse_url) == [event["message_id"]]
    assert message_ids(warehouse_url, "raw.passenger_events") == [other["message_id"]]
    assert_queues_empty(amqp_url, topology)


def test_duplicate_published_after_a_drain_is_counted_not_inserted(
    amqp_url, warehouse_url, topology
):
    event = make_position_event()
    publish_events(amqp_url, topology, [event])
    assert drain(amqp_url, warehouse_url, topology, "positions").inserted == 1
    publish_events(amqp_url, topology, [event, event])
    stats = drain(amqp_url, warehouse_url, topology, "positions")
    assert (stats.received, stats.inserted, stats.duplicates) == (2, 0, 2)
    assert count(warehouse_url, "raw.position_reports") == 1


def test_same_message_id_with_a_different_body_keeps_the_first(amqp_url, warehouse_url, topology):
    """message_id is the idempotency key: a re-send with other content is a duplicate."""
    first = make_flight_event(payload={"status": "boarding"})
    second = {**first, "payload": {**first["payload"], "status": "departed"}}
    publish_events(amqp_url, topology, [first, second])
    stats = drain(amqp_url, warehouse_url, topology, "flights")
    assert (stats.inserted, stats.duplicates) == (1, 1)
    assert query(warehouse_url, "SELECT status FROM raw.flight_events") == [("boarding",)]


# --- 2. a drain killed with SIGKILL --------------------------------------------------------------


def test_drain_killed_mid_batch_then_rerun_holds_every_message_once(
    amqp_url, warehouse_url, topology, tmp_path, drain_process
):
    n = 20_000
    queue = topology.queue("flights")
    bodies, ids = flight_bodies(n)
    publish_bulk(amqp_url, topology, bodies, "flight.sabre", queue)

    proc = drain_process(batch_size=500, prefetch=1000)
    try:
        deadline = time.monotonic() + 60
        while True:
            done = count(warehouse_url)
            if 0 < done < n - 2000:  # part-way, with plenty still to go
                break
            assert proc.poll() is None, (
                f"drain exited before it could be killed ({done} rows): "
                f"{(tmp_path / 'drain.log').read_text()}"
            )
            assert time.monotonic() < deadline, "the drain never started writing"
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    at_kill = count(warehouse_url)
    assert 0 < at_kill < n

    wait_for_no_consumers(amqp_url, queue)
    stats = drain(amqp_url, warehouse_url, topology, "flights", batch_size=2000, prefetch=4000)

    assert stats.inserted == n - at_kill
    assert stats.duplicates == stats.received - stats.inserted  # redelivered, already committed
    assert stats.quarantined == 0
    assert count(warehouse_url) == n
    got = message_ids(warehouse_url)
    assert len(got) == len(set(got)) == n
    assert set(got) == ids
    assert_queues_empty(amqp_url, topology)


def test_drain_killed_after_commit_before_ack_redelivers_harmlessly(
    amqp_url, warehouse_url, topology, tmp_path, drain_process
):
    """The worst moment: the batch is committed but not acked. The broker redelivers it; the
    raw key and the quarantine's body-hash key make the second write a no-op."""
    n_good = 1500
    queue = topology.queue("flights")
    bodies, ids = flight_bodies(n_good)
    # distinct bad bodies spread through the queue, so most batches hold one or two
    bad = [b"not json #%d" % i for i in range(0, n_good, 97)]
    bad += [dumps(make_flight_event(schema_version=2)) for _ in range(len(bad))]
    random.Random(3).shuffle(bad)
    mixed = list(bodies)
    for i, body in enumerate(bad):
        mixed.insert(i * len(mixed) // len(bad), body)
    publish_bulk(amqp_url, topology, mixed, "flight.sabre", queue)

    proc = drain_process(batch_size=200, prefetch=200, kill_self_after_commit_of_batch=3)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL, (out, (tmp_path / "drain.log").read_text())
    line = next(x for x in out.splitlines() if x.startswith("KILLED-AFTER-COMMIT"))
    fields = dict(part.split("=") for part in line.split()[1:])
    unacked_valid, unacked_rejected = int(fields["valid"]), int(fields["rejected"])
    rows_at_kill = count(warehouse_url)
    assert 0 < rows_at_kill < n_good

    wait_for_no_consumers(amqp_url, queue)
    stats = drain(amqp_url, warehouse_url, topology, "flights", batch_size=500, prefetch=500)

    assert stats.duplicates == unacked_valid, "exactly the committed, unacked batch comes back"
    assert stats.quarantine_duplicates == unacked_rejected
    assert stats.inserted == n_good - rows_at_kill
    assert set(message_ids(warehouse_url)) == ids and count(warehouse_url) == n_good
    assert query(warehouse_url, "SELECT count(*) FROM raw.quarantine")[0][0] == len(bad)
    assert_queues_empty(amqp_url, topology)


# --- 3. the broker connection dropped ------------------------------------------------------------


def _vhost_of(amqp_url: str) -> str:
    return unquote(urlsplit(amqp_url).path.lstrip("/")) or "/"


def test_broker_connection_dropped_during_drain_then_rerun_completes(
    amqp_url, warehouse_url, topology
):
    rabbitmqctl = shutil.which("rabbitmqctl")
    vhost = _vhost_of(amqp_url)
    if not rabbitmqctl or vhost == "/":
        pytest.skip("needs rabbitmqctl and a test vhost of our own to close connections in")
    n = 5_000
    queue = topology.queue("flights")
    bodies, ids = flight_bodies(n)
    publish_bulk(amqp_url, topology, bodies, "flight.sabre", queue)

    mid_drain, closed = threading.Event(), threading.Event()
    outcome: dict = {}

    def hold_after_third_batch(stats) -> None:  # on_batch runs in the drain thread, after an ack
        if stats.batches == 3:
            outcome["committed"] = stats.inserted
            mid_drain.set()
            closed.wait(60)  # more messages are delivered and unacked meanwhile (prefetch)

    def run() -> None:
        try:
            outcome["stats"] = drain(
                amqp_url,
                warehouse_url,
                topology,
                "flights",
                batch_size=100,
                prefetch=300,
                on_batch=hold_after_third_batch,
            )
        except BaseException as exc:  # the test inspects it
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        assert mid_drain.wait(60), "the drain never finished three batches"
        closed_proc = subprocess.run(
            [rabbitmqctl, "close_all_connections", "-p", vhost, "test: broker connection lost"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        closed.set()
    assert closed_proc.returncode == 0, closed_proc.stderr
    thread.join(60)
    assert not thread.is_alive(), "the drain hung after its connection was closed"

    error = outcome.get("error")
    assert error is not None, f"the drain returned normally: {outcome.get('stats')}"
    assert isinstance(error, DrainInterrupted), repr(error)
    assert isinstance(error.__cause__, pika.exceptions.AMQPConnectionError)
    assert "broker connection lost after" in str(error) and "redelivered" in str(error)
    assert error.stats.received >= outcome["committed"]
    # messages already delivered when the connection went may still be committed (their ack
    # then fails): harmless, they are redelivered and deduplicated below
    at_error = count(warehouse_url)
    assert outcome["committed"] <= at_error < n

    wait_for_no_consumers(amqp_url, queue)
    stats = drain(amqp_url, warehouse_url, topology, "flights", batch_size=2000, prefetch=4000)
    assert stats.stop_reason == "queue empty"
    assert stats.duplicates == at_error - outcome["committed"]  # committed, never acked
    assert stats.inserted == n - at_error
    assert count(warehouse_url) == n
    got = message_ids(warehouse_url)
    assert len(got) == len(set(got)) and set(got) == ids
    assert_queues_empty(amqp_url, topology)


# --- 4. delivery order ---------------------------------------------------------------------------


@pytest.fixture
def second_warehouse_url(template_db: str):
    name = f"latam_t2_{uuid.uuid4().hex[:12]}"
    _admin_exec(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
    yield _db_url(name)
    drop_database(name)


@pytest.fixture
def second_topology(amqp_url: str):
    topo = Topology(prefix=f"t{uuid.uuid4().hex[:10]}")
    declare_topology(amqp_url, topo)
    yield topo
    delete_topology(amqp_url, topo)


def _order_test_messages() -> list[tuple[bytes, str]]:
    rng = random.Random(20261127)
    items: list[tuple[bytes, str]] = []
    statuses = ["scheduled", "boarding", "departed", "arrived"]
    for flight in range(5):
        for step, status in enumerate(statuses):
            event = make_flight_event(
                event_time=f"2026-11-27T1{step}:0{flight}:00-03:00",
                payload={"flight_number": 700 + flight, "status": status},
            )
            items.append((dumps(event), "flight.sabre"))
        for _ in range(4):
            action = rng.choice(["booked", "checked_in", "boarded", "cancelled"])
            p = make_passenger_event(payload={"flight_number": 700 + flight, "action": action})
            items.append((dumps(p), "passenger.amadeus"))
            pos = make_position_event(
                payload={"flight_number": 700 + flight, "latitude": rng.uniform(-50, 10)}
            )
            items.append((dumps(pos), "position.adsb-feed"))
    items += [items[0], items[7], items[-1]]  # re-sent duplicates
    bad = [BAD_CASES_BY_ID[c].body for c in ("not_json", "latitude_123", "empty_body")]
    items += [(bad[0], "flight.x"), (bad[1], "position.x"), (bad[2], "passenger.x"), items[-2]]
    return items


def _canonical_dump(url: str) -> dict[str, list]:
    dump = {}
    for table in RAW_TABLES:
        dump[table] = query(
            url,
            f"""SELECT to_jsonb(t) - 'ingest_seq' - 'received_at' - 'ingest_xid'
                FROM {table} t ORDER BY message_id""",
        )
    dump["raw.quarantine"] = query(
        url,
        """SELECT split_part(queue, '.', 2), routing_key, reason, message_id, body
           FROM raw.quarantine ORDER BY body_sha256, queue""",
    )
    dump["raw.quarantine"] = [(*r[:4], bytes(r[4])) for r in dump["raw.quarantine"]]
    return dump


def test_delivery_order_does_not_change_raw(
    amqp_url, warehouse_url, topology, second_warehouse_url, second_topology
):
    items = _order_test_messages()
    shuffled = list(items)
    random.Random(7).shuffle(shuffled)
    assert shuffled != items

    publish_many(amqp_url, topology, items)
    publish_many(amqp_url, second_topology, list(reversed(shuffled)))
    drain_all(amqp_url, warehouse_url, topology, batch_size=7)
    drain_all(amqp_url, second_warehouse_url, second_topology, batch_size=3)

    first, second = _canonical_dump(warehouse_url), _canonical_dump(second_warehouse_url)
    assert len(first["raw.flight_events"]) == 20
    assert len(first["raw.passenger_events"]) == 20
    assert len(first["raw.position_reports"]) == 20
    assert len(first["raw.quarantine"]) == 3
    assert first == second
    assert_queues_empty(amqp_url, topology)
    assert_queues_empty(amqp_url, second_topology)


# --- 5. wrong routing keys -----------------------------------------------------------------------


def test_event_under_the_wrong_routing_key_lands_in_its_own_table(
    amqp_url, warehouse_url, topology
):
    position, passenger, flight = make_position_event(), make_passenger_event(), make_flight_event()
    publish_many(
        amqp_url,
        topology,
        [
            (dumps(position), "flight.adsb-feed"),
            (dumps(passenger), "position.amadeus"),
            (dumps(flight), "passenger.sabre"),
        ],
    )

    flights_stats = drain(amqp_url, warehouse_url, topology, "flights")
    assert flights_stats.inserted_by_table == {"raw.position_reports": 1}
    assert query(
        warehouse_url, "SELECT message_id::text, routing_key, flight_key FROM raw.position_reports"
    ) == [(position["message_id"], "flight.adsb-feed", "LA800-2026-11-27-SCL")]

    drain(amqp_url, warehouse_url, topology, "positions")
    drain(amqp_url, warehouse_url, topology, "passengers")
    assert query(
        warehouse_url, "SELECT message_id::text, routing_key FROM raw.passenger_events"
    ) == [(passenger["message_id"], "position.amadeus")]
    assert query(warehouse_url, "SELECT message_id::text, routing_key FROM raw.flight_events") == [
        (flight["message_id"], "passenger.sabre")
    ]
    assert query(warehouse_url, "SELECT count(*) FROM raw.quarantine") == [(0,)]
    assert_queues_empty(amqp_url, topology)


def test_unknown_routing_key_is_kept_and_drained_from_the_unrouted_queue(
    amqp_url, warehouse_url, topology
):
    """The alternate exchange keeps a message no binding matches; it is not silently dropped."""
    event = make_flight_event()
    publish_many(amqp_url, topology, [(dumps(event), "baggage.x"), (b"junk", "unknown.unknown")])
    wait_until(lambda: queue_state(amqp_url, topology.unrouted_queue)[0] == 2, timeout=10)
    others = [q for q in topology.queues if q != topology.unrouted_queue]
    assert all(queue_state(amqp_url, q)[0] == 0 for q in others)

    stats = drain(amqp_url, warehouse_url, topology, topology.family_of(topology.unrouted_queue))
    assert (stats.inserted, stats.quarantined) == (1, 1)
    assert message_ids(warehouse_url) == [event["message_id"]]
    assert_queues_empty(amqp_url, topology)


# --- 6. the row-by-row fallback ------------------------------------------------------------------

# Contract-valid events that Postgres refuses, each with the constraint this test's own database
# adds to make it so (a stand-in for any value the contract allows and a column cannot hold; the
# contract itself refuses every such value it knows of), and what the reason must mention.
WAREHOUSE_REJECTS = {
    "check_violation": (
        lambda: dumps(make_position_event()).replace(b'"latitude":-33.39', b'"latitude":-33.5'),
        "ALTER TABLE raw.position_reports ADD CONSTRAINT no_lat CHECK (latitude <> -33.5)",
        "flight.adsb-feed",
        "check violation (SQLSTATE 23514)",
    ),
    "value_too_long": (
        lambda: dumps(make_position_event(payload={"tail_number": "CC-BGA-X-123"})),
        "ALTER TABLE raw.position_reports ALTER COLUMN tail_number TYPE varchar(8)",
        "flight.adsb-feed",
        "string data right truncation (SQLSTATE 22001)",
    ),
}


@pytest.mark.parametrize("case", sorted(WAREHOUSE_REJECTS))
def test_row_postgres_rejects_is_quarantined_alone(case, amqp_url, warehouse_url, topology):
    make_body, constraint, routing_key, error = WAREHOUSE_REJECTS[case]
    body = make_body()
    assert validate_body(body, 1 << 20).__class__.__name__ == "ValidEvent", "contract-valid"
    query(warehouse_url, constraint)
    already = make_flight_event()
    publish_events(amqp_url, topology, [already])
    drain(amqp_url, warehouse_url, topology, "flights")

    goods = [make_flight_event(payload={"flight_number": 10 + i}) for i in range(20)]
    contract_bad = BAD_CASES_BY_ID["flight_number_as_string"].body
    items = [(dumps(g), "flight.sabre") for g in goods[:10]]
    items += [(body, routing_key), (contract_bad, "flight.sabre"), (dumps(already), "flight.x")]
    items += [(dumps(g), "flight.sabre") for g in goods[10:]]
    publish_many(amqp_url, topology, items)

    stats = drain(amqp_url, warehouse_url, topology, "flights", batch_size=100, prefetch=100)

    assert stats.received == len(items)
    assert stats.inserted == len(goods)
    assert stats.duplicates == 1
    assert stats.quarantined == 2
    rows = query(
        warehouse_url,
        "SELECT reason, body, message_id, routing_key FROM raw.quarantine ORDER BY quarantine_id",
    )
    by_body = {bytes(r[1]): r for r in rows}
    assert set(by_body) == {body, contract_bad}, "the original bytes, exactly"
    reason, _, mid, rk = by_body[body]
    assert reason.startswith("rejected by the warehouse"), reason
    assert error in reason
    assert mid == validate_body(body, 1 << 20).message_id
    assert rk == routing_key
    assert not by_body[contract_bad][0].startswith("rejected by the warehouse")
    assert set(message_ids(warehouse_url)) == {already["message_id"]} | {
        g["message_id"] for g in goods
    }

    # a redelivery of the rejected message does not make a second quarantine row
    publish_many(amqp_url, topology, [(body, routing_key)])
    again = drain(amqp_url, warehouse_url, topology, "flights")
    assert (again.quarantined, again.quarantine_duplicates) == (1, 1)
    assert query(warehouse_url, "SELECT count(*) FROM raw.quarantine") == [(2,)]
    assert_queues_empty(amqp_url, topology)


def _valid(body: bytes, routing_key: str = "flight.sabre") -> Valid:
    outcome = validate_body(body, 1 << 20)
    return Valid(outcome.event_type, routing_key, body.decode(), outcome.message_id)


def test_writer_falls_back_row_by_row_within_one_batch(warehouse_url):
    """Straight against RawWriter, so the whole batch is certainly one transaction: one good
    event whose text Postgres cannot take as jsonb, and one with an out-of-range offset."""
    goods = [make_flight_event(payload={"flight_number": 10 + i}) for i in range(10)]
    not_jsonb = Valid("flight_status", "flight.x", '{"message_id": "oops", NaN}', str(uuid.uuid4()))
    # the contract refuses this offset; built directly to exercise the writer's own safety net
    off = make_flight_event(event_time="2026-11-27T10:15:00-19:00")
    bad_offset = Valid("flight_status", "flight.sabre", dumps(off).decode(), off["message_id"])
    valid = [_valid(dumps(g)) for g in goods[:5]] + [not_jsonb, bad_offset]
    valid += [_valid(dumps(g)) for g in goods[5:]]
    rejected = [Rejected("q.flights", "flight.x", "body is not JSON: test", b"{")]

    conn = psycopg2.connect(warehouse_url)
    try:
        result = RawWriter(conn).write(valid, rejected, "q.flights")
    finally:
        conn.close()

    assert result.inserted_total == len(goods)
    assert result.valid == len(goods)
    assert result.duplicates == 0
    assert (result.quarantined, result.quarantine_new) == (3, 3)
    rows = query(warehouse_url, "SELECT reason, body FROM raw.quarantine ORDER BY quarantine_id")
    reasons = {bytes(body): reason for reason, body in rows}
    assert reasons[b"{"] == "body is not JSON: test"
    assert reasons[not_jsonb.text.encode()].startswith(
        "rejected by the warehouse: invalid text representation"
    )
    assert reasons[bad_offset.text.encode()].startswith(
        "rejected by the warehouse: invalid time zone"
    )
    assert count(warehouse_url) == len(goods)


def test_writer_reports_a_lost_connection_as_lost(warehouse_url):
    """A batch whose connection dies fails with the reason it died (not with the rollback that
    a dead connection refuses), and nothing of it is written: the drain acks nothing."""
    conn = psycopg2.connect(warehouse_url)
    try:
        writer = RawWriter(conn)
        with conn.cursor() as cur:
            cur.execute("SELECT pg_backend_pid()")
            pid = cur.fetchone()[0]
        conn.commit()
        assert query(warehouse_url, "SELECT pg_terminate_backend(%s)", (pid,)) == [(True,)]
        with pytest.raises(psycopg2.OperationalError):
            writer.write([_valid(dumps(make_flight_event()))], [], "q.flights")
    finally:
        conn.close()
    assert count(warehouse_url) == 0
