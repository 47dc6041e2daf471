"""Fifty source systems publishing at once, each through its own provisioned user, with the
identity check on: every event lands exactly once, and one misbehaving system (poison bodies, a
claimed foreign source_system, a flood at 20 times its rate) stops none of the other 49.

The 49 systems' delivery delay (publish to raw row) is printed for both rounds; the figures go to
docs/sources.md and are not asserted (they depend on the machine's load).
"""

from __future__ import annotations

import statistics
import threading
import time

from latam_dagster.ingest.drain import IDENTITY_MISMATCH, DrainConfig, drain_queue
from latam_dagster.ingest.topology import ROUTING_PREFIX
from latam_dagster.sources.provision import provision
from latam_dagster.sources.registry import Registry, load_registry
from tests.conftest import query
from tests.integration.ingest_helpers import MAKERS
from tests.integration.sources_support import (
    Broker,
    SystemPublisher,
    broker_fixture,  # noqa: F401 - the `broker` fixture
    password_of,
)
from tests.waiting import eventually

EVENTS_PER_SYSTEM = 20
RATE_PER_S = 20.0  # each well-behaved system's publish rate
FLOOD_FACTOR = 20
POISON = 20
CLAIMS = 20
RAW = ("raw.flight_events", "raw.passenger_events", "raw.position_reports")
FAMILIES = ("flights", "passengers", "positions", "unrouted")


def _prefixed(registry: Registry, prefix: str) -> Registry:
    return Registry(
        version=1,
        systems=tuple(
            type(s).model_validate({**s.model_dump(), "name": prefix + s.name, "routing_keys": ()})
            for s in registry.systems
        ),
    )


class Drains:
    """One drain loop per queue, with the identity check on, until stopped."""

    def __init__(self, b: Broker, url: str) -> None:
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        config = DrainConfig(
            idle_seconds=0.2, max_seconds=20, lock_timeout=30, enforce_identity=True
        )

        def loop(family: str) -> None:
            try:
                while not self.stop.is_set():
                    drain_queue(b.amqp_url, url, b.topo, family, config)
            except BaseException as exc:  # noqa: BLE001 - reported by the test
                self.errors.append(exc)

        self.threads = [threading.Thread(target=loop, args=(f,), daemon=True) for f in FAMILIES]
        for t in self.threads:
            t.start()

    def close(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=60)
        assert not self.errors, self.errors


def _publish_round(
    b: Broker, pubs: dict[str, SystemPublisher], registry: Registry, bad: str | None
) -> tuple[dict[str, float], dict[str, float], set[str], int]:
    """Every system publishes EVENTS_PER_SYSTEM events at RATE_PER_S, at once; `bad` (when set)
    floods at FLOOD_FACTOR times the rate and sends poison and foreign-name events too.
    Returns (publish time of the good systems' events, of the flood's, expected quarantine ids,
    poison count)."""
    good: dict[str, float] = {}
    flood: dict[str, float] = {}
    claims: set[str] = set()
    lock = threading.Lock()
    names = registry.names
    errors: list[BaseException] = []

    def run(name: str) -> None:
        try:
            system = registry.get(name)
            etype = system.event_types[0]
            key = f"{ROUTING_PREFIX[etype]}.{name}"
            n, pause = EVENTS_PER_SYSTEM, 1 / RATE_PER_S
            if name == bad:
                n, pause = EVENTS_PER_SYSTEM * FLOOD_FACTOR, pause / FLOOD_FACTOR
            target = flood if name == bad else good
            for i in range(n):
                event = MAKERS[etype](source_system=name)
                sent = time.time()
                pubs[name].publish(event, key)
                with lock:
                    target[event["message_id"]] = sent
                if name == bad and i < POISON:
                    pubs[name].publish(b'{"message_id": "' + str(i).encode() + b'", oops', key)
                if name == bad and i < CLAIMS:
                    other = names[(names.index(name) + 1) % len(names)]
                    fake = MAKERS[etype](source_system=other)
                    pubs[name].publish(fake, key)
                    with lock:
                        claims.add(fake["message_id"])
                time.sleep(pause)  # the system's publish rate, not a wait for a result
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return good, flood, claims, POISON if bad else 0


def _landed(url: str, ids: set[str]) -> dict[str, float]:
    rows: list[tuple] = []
    for table in RAW:
        rows += query(
            url,
            f"SELECT message_id::text, extract(epoch FROM received_at)::float8 FROM {table} "  # nosec B608
            "WHERE message_id = ANY(%s::uuid[])",
            (list(ids),),
        )
    return dict(rows)


def _delays(published: dict[str, float], landed: dict[str, float]) -> dict[str, float]:
    d = sorted(max(0.0, landed[m] - t) for m, t in published.items())
    q = statistics.quantiles(d, n=100)
    return {"n": len(d), "p50_ms": q[49] * 1000, "p95_ms": q[94] * 1000, "max_ms": d[-1] * 1000}


def test_fifty_systems_publish_at_once_and_one_misbehaving_stops_none(
    broker: Broker, warehouse_url, tmp_path
):
    b = broker
    registry = _prefixed(load_registry(), b.prefix)
    assert len(registry.systems) == 50
    started = time.monotonic()
    plan = provision(b.api, registry, b.vhost, b.topo.exchange, tmp_path)
    assert len(plan.created) == 50
    provisioned_s = time.monotonic() - started
    pubs = {n: SystemPublisher(b, n, password_of(tmp_path, n)) for n in registry.names}
    bad = registry.names[0]  # an operations control centre gone wrong
    figures: dict[str, dict[str, float]] = {}
    drains = Drains(b, warehouse_url)
    try:
        # round 1: all fifty behave
        good, _flood, _claims, _p = _publish_round(b, pubs, registry, bad=None)
        assert len(good) == 50 * EVENTS_PER_SYSTEM
        landed = eventually(
            lambda: (got := _landed(warehouse_url, set(good))) and len(got) == len(good) and got,
            60,
            "every event of the fifty systems in raw",
        )
        figures["50 systems, all behaving"] = _delays(good, landed)

        # round 2: the same, with `bad` misbehaving
        good2, flood, claims, poison = _publish_round(b, pubs, registry, bad=bad)
        everything = set(good2) | set(flood)
        landed2 = eventually(
            lambda: (
                (got := _landed(warehouse_url, everything)) and len(got) == len(everything) and got
            ),
            60,
            "every valid event of round 2 in raw",
        )
        eventually(
            lambda: (
                query(warehouse_url, "SELECT count(*) FROM raw.quarantine")[0][0]
                >= poison + len(claims)
            ),
            60,
            "the poison and foreign-name messages in the quarantine",
        )
    finally:
        drains.close()
        for p in pubs.values():
            p.close()
    figures["49 systems beside one misbehaving"] = _delays(good2, landed2)

    # exactly once: one row per message_id, no more rows than events
    total = sum(query(warehouse_url, f"SELECT count(*) FROM {t}")[0][0] for t in RAW)  # nosec B608
    assert total == len(good) + len(everything)
    quarantined = dict(
        query(warehouse_url, "SELECT reason, count(*) FROM raw.quarantine GROUP BY 1")
    )
    assert quarantined.pop(IDENTITY_MISMATCH) == len(claims) == CLAIMS
    assert sum(quarantined.values()) == poison, quarantined
    keys = {r[0] for r in query(warehouse_url, "SELECT DISTINCT routing_key FROM raw.quarantine")}
    assert keys == {f"flight.{bad}"}, "only the misbehaving system's messages are quarantined"

    print(f"\nprovisioned 50 users in {provisioned_s:.1f} s")
    print(f"round 2: {bad} flooded {len(flood)} events at {RATE_PER_S * FLOOD_FACTOR:.0f}/s, "
          f"{poison} poison, {len(claims)} foreign source_system")  # fmt: skip
    for label, f in figures.items():
        print(f"{label}: {f['n']} events, delay p50 {f['p50_ms']:.0f} ms, "
              f"p95 {f['p95_ms']:.0f} ms, max {f['max_ms']:.0f} ms")  # fmt: skip
    print(f"test took {time.monotonic() - started:.1f} s")
