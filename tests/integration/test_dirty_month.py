"""A dirty month through `latam run-once`, as users run it: held back, listed, never served, fixed.

Twelve days of simulated traffic on a slice of the network are published to RabbitMQ the way the
sources publish them (duplicated, out of order), with the faults real feeds carry: an unknown
destination, a flight from an airport the reference data does not know yet, a schedule whose
arrival precedes its departure, a departure typed three days late, seat capacities far below the
boarded count, and a bad value corrected by a later event of the same batch. The pandas reference
(`tests/reference_impl.py`) says independently which rows its row rules hold back and what the
marts hold when they read only the published rows; the warehouse, `latam quality rejects` and the
API must agree with it, before and after the corrections arrive.
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest

from api_service import create_app
from api_service.config import READ_ONLY_ROLE, get_api_config, role_url
from api_service.queries import LOAD_COLUMNS as API_LOAD_FIELDS
from latam_dagster.ingest.publish import PERSISTENT
from latam_dagster.ingest.topology import (
    Topology,
    open_connection,
    queue_depths,
    routing_key_for,
)
from latam_dagster.settings import get_settings
from latam_dagster.simulator.encoding import to_ms
from latam_dagster.simulator.network import AIRCRAFT, Network, load_network
from latam_dagster.simulator.operations import DAY, Operations
from latam_dagster.simulator.streams import Streams
from latam_dagster.simulator.systems import source_systems
from tests import reference_impl as ref_impl
from tests.conftest import LATAM, RUN_ID, _db_url, drop_database, query
from tests.integration.api_fixtures import new_api_key
from tests.integration.observability_support import wait_for_depth
from tests.integration.test_curated_correctness import (
    AIRPORT_COLUMNS,
    FACT_COLUMNS,
    LOAD_COLUMNS,
    ROUTE_COLUMNS,
    TOLERANCE,
)
from tests.transform_helpers import assert_same_rows, assert_valid, read_table

pytestmark = pytest.mark.integration

FACT = ref_impl.FACT_FLIGHT
LOAD = ref_impl.PASSENGER_LOAD
SEED = 202610
START = datetime(2026, 10, 1, tzinfo=UTC)
DAYS = 12
SLOT_STEP = 6  # every sixth rotation of the network: 23 rotations, about 46 flights a day
PAX_KEEP = 10  # one passenger in ten keeps their events: real loads, a tenth of the volume
NEW_AIRPORT = "XQZ"  # a destination opened before the airport package lists it
NEW_AIRPORT_ROW = {"lat": -54.9311, "lon": -67.6263}
UNKNOWN_CODE = "QQQ"  # a typo of a source: no such airport
DAY_DELTA = timedelta(days=1)
# the watermarks of the blocked table and of the one reading it; the others move on
WATERMARKS = """SELECT * FROM curated.watermarks
    WHERE consumer IN ('curated.fact_flight', 'curated.flight_passenger_load') ORDER BY 1, 2"""


# -- the month ----------------------------------------------------------------------------------


def simulated_month(days: int = DAYS, slot_step: int = SLOT_STEP, pax_keep: int = PAX_KEEP):
    """Status and passenger events of every flight of a slice of the network over `days` days."""
    net = load_network()
    network = Network(net.airports, net.slots[::slot_step])
    rng = random.Random(SEED)
    start = to_ms(START)
    streams = Streams(rng, source_systems(12), start)
    events: list[dict] = []
    for _, flight in Operations(network, rng, start).flights():
        if flight.sched_dep >= start + days * DAY:
            return events
        events += [e for _, _, e in streams.status(flight)]
        events += [
            e
            for _, _, e in streams.passengers(flight)
            if int(e["payload"]["passenger_ref"][-4:], 16) % pax_keep == 0
        ]
    raise AssertionError("the simulator stopped")  # pragma: no cover


class Faults:
    """Contract-valid events that break row rules, and the events that later correct them."""

    def __init__(self, clean: list[dict]):
        self.rng = random.Random(SEED + 1)
        computed = ref_impl.compute(clean, get_settings().pii_hash_key.get_secret_value())
        flights = computed.fact_flight.set_index("flight_key")
        boarded = computed.flight_passenger_load.set_index("flight_key")["passengers_boarded"]
        # six distinct flights that arrived with a few passengers: the load faults need some
        arrived = sorted(k for k, f in flights.iterrows() if f["arrived"] and boarded[k] >= 8)
        picks = self.rng.sample(arrived, 6)
        self.flights = flights
        self.unknown_dest, self.disordered, self.late_typo = picks[:3]
        self.low_seats, self.overboarded, self.fixed_in_batch = picks[3:]
        self.boarded = boarded

    def _id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def status(self, key: str, after: timedelta, source: str, **fields) -> dict:
        """A status event of flight `key`, `after` its last one, repeating its latest status."""
        f = self.flights.loc[key]
        payload = {
            "carrier": f["carrier"],
            "flight_number": int(f["flight_number"]),
            "flight_date": f["flight_date"].isoformat(),
            "origin": f["origin"],
            "destination": f["destination"],
            "status": f["status"],
            **fields,
        }
        return self._event("flight_status", f["last_event_time"] + after, source, payload)

    def _event(self, etype: str, at: pd.Timestamp, source: str, payload: dict) -> dict:
        return {
            "message_id": self._id(),
            "schema_version": 1,
            "event_type": etype,
            "event_time": at.isoformat(),
            "source_system": source,
            "payload": payload,
        }

    def _times(self, key: str, field: str, shift: timedelta) -> str:
        return (self.flights.loc[key][field] + shift).isoformat()

    def new_airport_flight(self) -> list[dict]:
        """LA8123 from the new airport to Santiago: scheduled, departed, arrived, 6 passengers."""
        day = (START + timedelta(days=3)).date()
        dep = datetime(day.year, day.month, day.day, 15, 0, tzinfo=UTC)
        key = {"carrier": "LA", "flight_number": 8123, "flight_date": day.isoformat()}
        key["origin"] = NEW_AIRPORT
        route = {**key, "destination": "SCL"}
        sched = {
            "scheduled_departure": dep.isoformat(),
            "scheduled_arrival": (dep + timedelta(hours=3, minutes=30)).isoformat(),
            "tail_number": "CC-BAZ",
            "seat_capacity": AIRCRAFT["A320"].seats,
        }
        at = pd.Timestamp(dep)
        off, on = at + timedelta(minutes=4), at + timedelta(minutes=212)
        events = [
            self._event(
                "flight_status", at - 3 * DAY_DELTA, "ops_sched",
                {**route, "status": "scheduled", **sched},
            ),
            self._event(
                "flight_status", off, "ops_control",
                {**route, "status": "departed", "actual_departure": off.isoformat()},
            ),
            self._event(
                "flight_status", on, "ops_control",
                {**route, "status": "arrived", "actual_arrival": on.isoformat()},
            ),
        ]  # fmt: skip
        for n in range(6):
            for k, action in enumerate(("booked", "checked_in", "boarded")):
                payload = {"passenger_ref": f"PAX-NEWROUTE{n:04d}", **key, "action": action}
                when = at - timedelta(days=2 - k, minutes=n)
                events.append(self._event("passenger_event", when, "res_core", payload))
        return events

    def dirty(self) -> list[dict]:
        """The faults, all in the first batch."""
        f = self.flights
        hour = timedelta(hours=1)
        low_seats = max(1, int(self.boarded[self.low_seats]) // 4)
        extra = []
        row = f.loc[self.overboarded]
        # a departure control system replays boarding records under new references: twice the
        # cabin boards
        for n in range(2 * int(row["seat_capacity"])):
            payload = {
                "passenger_ref": f"PAX-REPLAY{n:05d}",
                "carrier": row["carrier"],
                "flight_number": int(row["flight_number"]),
                "flight_date": row["flight_date"].isoformat(),
                "origin": row["origin"],
                "action": "boarded",
            }
            at = row["last_event_time"] - timedelta(minutes=30)
            extra.append(self._event("passenger_event", at, "dcs_aux_1", payload))
        return [
            *self.new_airport_flight(),
            self.status(self.unknown_dest, hour, "ops_acars", destination=UNKNOWN_CODE),
            # local time stamped as UTC: the arrival lands before the departure
            self.status(
                self.disordered,
                hour,
                "ops_mvt",
                scheduled_arrival=self._times(self.disordered, "scheduled_departure", -2 * hour),
            ),
            # the departure typed three days late, after the arrival
            self.status(
                self.late_typo,
                hour,
                "ops_mvt",
                actual_departure=self._times(self.late_typo, "actual_departure", 3 * DAY_DELTA),
            ),
            self.status(self.low_seats, hour, "ops_sched", seat_capacity=low_seats),
            *extra,
            # a capacity typo (a zero too many), corrected by a later event of the same batch
            self.status(self.fixed_in_batch, hour, "ops_sched", seat_capacity=1800),
            self.status(
                self.fixed_in_batch,
                2 * hour,
                "ops_sched",
                seat_capacity=int(f.loc[self.fixed_in_batch]["seat_capacity"]),
            ),
        ]

    def expected_rejects(self) -> set[tuple[str, str, str]]:
        new_key = f"LA8123-{(START + timedelta(days=3)).date().isoformat()}-{NEW_AIRPORT}"
        return {
            (FACT, self.unknown_dest, "flight_airports_known"),
            (FACT, new_key, "flight_airports_known"),
            (FACT, self.disordered, "flight_schedule_ordered"),
            (FACT, self.late_typo, "flight_delays_plausible"),
            (FACT, self.late_typo, "flight_schedule_ordered"),
            (LOAD, self.low_seats, "load_factor_plausible"),
            (LOAD, self.overboarded, "load_factor_plausible"),
        }

    def corrections(self) -> list[dict]:
        """Later events fixing three faults; the late typo and the replayed boarding list stay."""
        f, day = self.flights, DAY_DELTA
        return [
            self.status(
                self.unknown_dest,
                day,
                "ops_control",
                destination=f.loc[self.unknown_dest]["destination"],
            ),
            self.status(
                self.disordered,
                day,
                "ops_control",
                scheduled_arrival=self._times(self.disordered, "scheduled_arrival", timedelta()),
            ),
            self.status(
                self.low_seats,
                day,
                "ops_sched",
                seat_capacity=int(f.loc[self.low_seats]["seat_capacity"]),
            ),
        ]


def delivered(events: list[dict], seed: int) -> list[dict]:
    """As the broker hands them over: 2 % twice, each up to a few thousand messages out of place."""
    rng = random.Random(seed)
    out = events + [rng.choice(events) for _ in range(len(events) // 50)]
    order = {id(e): i + rng.randrange(5000) for i, e in enumerate(out)}
    return sorted(out, key=lambda e: order[id(e)])


def publish(amqp_url: str, topo: Topology, events: list[dict]) -> None:
    """Publish on the topology's exchange with the sources' routing keys, then wait until the
    queues hold every message. Unconfirmed, many times faster than a confirm per message;
    the wait on the queue depth is what proves the broker has them all."""
    before = sum(queue_depths(amqp_url, topo).values())
    conn = open_connection(amqp_url)
    try:
        channel = conn.channel()
        for e in events:
            body = json.dumps(e).encode()
            channel.basic_publish(topo.exchange, routing_key_for(e), body, PERSISTENT)
        # one round trip before closing: a connection closed right behind unconfirmed publishes
        # may lose the last ones
        channel.queue_declare(topo.queues[0], passive=True)
    finally:
        conn.close()
    wait_for_depth(amqp_url, topo, before + len(events), timeout=60)


# -- the system under test ------------------------------------------------------------------------


@pytest.fixture
def env(warehouse_url: str, amqp_url: str, topology: Topology, tmp_path) -> Iterator[dict]:
    """What `latam` reads: this test's warehouse, topology, Dagster home and database."""
    dagster_db = f"latam_d_{RUN_ID}_{uuid.uuid4().hex[:8]}"
    yield {
        **os.environ,
        "LATAM_WAREHOUSE_URL": warehouse_url,
        "LATAM_AMQP_URL": amqp_url,
        "LATAM_TOPOLOGY_PREFIX": topology.prefix,
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
        "LATAM_DAGSTER_PG_URL": _db_url(dagster_db),
        "LATAM_DRAIN_IDLE_SECONDS": "0.5",
        "LATAM_QUALITY_DIR": str(tmp_path / "quality"),
        # the documented defaults, pinned: the caller's environment must not change the verdict
        "LATAM_QUALITY_REJECT_MAX_PCT": "1",
        "LATAM_QUALITY_REJECT_MIN_ROWS": "10",
    }
    drop_database(dagster_db)


def latam(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [LATAM, *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )


def run_once(env: dict) -> subprocess.CompletedProcess:
    proc = latam(env, "run-once")
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


def listed_rejects(env: dict) -> dict[tuple[str, str, str], dict]:
    proc = latam(env, "quality", "rejects", "--json", "--limit", "100000")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {(r["table"], r["key"], r["rule"]): r for r in json.loads(proc.stdout)}


class Api:
    """The REST API as `latam api` serves it: read-only role, bearer key."""

    def __init__(self, url: str):
        config = get_api_config(
            database_url=role_url(url, READ_ONLY_ROLE),
            cursor_secret="test-cursor-secret",
            key_cache_seconds=0.0,
            testing=True,
        )
        self.app = create_app(config)
        self.client = self.app.test_client()
        self.headers = {"Authorization": f"Bearer {new_api_key(url)}"}

    def flight(self, key: str):
        return self.client.get(f"/api/v1/flights/{key}", headers=self.headers)

    def close(self) -> None:
        self.app.extensions["latam_api"].db.close()


@pytest.fixture
def api(warehouse_url: str) -> Iterator[Api]:
    served = Api(warehouse_url)
    yield served
    served.close()


def assert_warehouse_matches(url: str, ref: ref_impl.Reference) -> None:
    """Published tables and marts equal the reference's published frames and the marts of them."""
    fact = read_table(url, "SELECT * FROM curated.fact_flight")
    assert_same_rows(fact, ref.published_fact_flight, ["flight_key"], FACT_COLUMNS, TOLERANCE)
    load = read_table(url, "SELECT * FROM curated.flight_passenger_load")
    assert_same_rows(load, ref.published_flight_passenger_load, ["flight_key"], LOAD_COLUMNS)
    route = read_table(url, "SELECT * FROM marts.route_daily_performance")
    key = ["flight_date", "carrier", "origin", "destination"]
    assert_same_rows(route, ref.route_daily_performance, key, ROUTE_COLUMNS, TOLERANCE)
    traffic = read_table(url, "SELECT * FROM marts.airport_daily_traffic")
    assert_same_rows(
        traffic, ref.airport_daily_traffic, ["flight_date", "airport"], AIRPORT_COLUMNS
    )


def route_row(url: str, flight: pd.Series) -> tuple[int, int]:
    rows = query(
        url,
        """SELECT flights, passengers_boarded FROM marts.route_daily_performance
           WHERE flight_date = %s AND carrier = %s AND origin = %s AND destination = %s""",
        (flight["flight_date"], flight["carrier"], flight["origin"], flight["destination"]),
    )
    return rows[0] if rows else (0, 0)


# -- the tests ----------------------------------------------------------------------------------


def test_dirty_month_is_held_back_listed_never_served_then_published_once_corrected(
    env, amqp_url, topology, warehouse_url, api
):
    clean = simulated_month()
    faults = Faults(clean)
    round_one = clean + faults.dirty()
    assert_valid(round_one)
    secret = get_settings().pii_hash_key.get_secret_value()
    ref = ref_impl.compute(round_one, secret)
    flights = len(ref.fact_flight)
    # the reference agrees the planted faults, and only they, break a rule that holds back
    assert ref.rejects == faults.expected_rejects()
    held_flights, held_loads = ref.held(FACT), ref.held(LOAD)
    assert len(held_flights) * 100 < flights and len(held_loads) * 100 < flights  # under 1 %

    publish(amqp_url, topology, delivered(round_one, SEED))
    run_once(env)

    assert_warehouse_matches(warehouse_url, ref)
    first = listed_rejects(env)
    assert set(first) == ref.rejects
    for (_table, key, _rule), row in first.items():
        assert row["first_seen"] and row["run_id"]
        assert date.fromisoformat(row["flight_date"]) == _flight_date(key)
    assert first[(FACT, faults.unknown_dest, "flight_airports_known")]["observed"] == {
        "origin": faults.flights.loc[faults.unknown_dest]["origin"],
        "destination": UNKNOWN_CODE,
    }
    # not served: held-back flights are unknown to the API, held-back loads are left blank
    for key in held_flights:
        assert api.flight(key).status_code == 404, key
    for key in held_loads:
        body = api.flight(key).get_json()["data"]
        assert body["flight_key"] == key
        assert {c: body[c] for c in API_LOAD_FIELDS} == dict.fromkeys(API_LOAD_FIELDS), key
    fixed = api.flight(faults.fixed_in_batch).get_json()["data"]
    assert fixed["seat_capacity"] == faults.flights.loc[faults.fixed_in_batch]["seat_capacity"]
    # the marts count a flight whose load is held back, without its passengers
    low = faults.flights.loc[faults.low_seats]
    flights_on_route, boarded_on_route = route_row(warehouse_url, low)
    assert (flights_on_route, boarded_on_route) == _route_of_published(ref, low)
    assert faults.low_seats in set(ref.published_fact_flight["flight_key"])

    # the corrections: later events, and the reference data catching up with the new airport
    corrections = faults.corrections()
    assert_valid(corrections)
    publish(amqp_url, topology, corrections)
    query(
        warehouse_url,
        """INSERT INTO curated.dim_airport (iata, name, city, country, latitude, longitude)
           VALUES (%s, 'New Airport', 'Puerto Williams', 'CL', %s, %s)""",
        (NEW_AIRPORT, NEW_AIRPORT_ROW["lat"], NEW_AIRPORT_ROW["lon"]),
    )
    run_once(env)

    airports = {**ref_impl.iata_airports(), NEW_AIRPORT: NEW_AIRPORT_ROW}
    ref2 = ref_impl.compute(round_one + corrections, secret, airports)
    still = {
        (FACT, faults.late_typo, "flight_delays_plausible"),
        (FACT, faults.late_typo, "flight_schedule_ordered"),
        (LOAD, faults.overboarded, "load_factor_plausible"),
    }
    assert ref2.rejects == still
    assert_warehouse_matches(warehouse_url, ref2)
    second = listed_rejects(env)
    assert set(second) == still
    for k in still:  # still held since the fault arrived
        assert second[k]["first_seen"] == first[k]["first_seen"]
    published_now = held_flights - ref2.held(FACT)
    assert len(published_now) == 3
    for key in published_now:
        assert api.flight(key).status_code == 200, key
    assert api.flight(faults.late_typo).status_code == 404
    body = api.flight(faults.low_seats).get_json()["data"]
    expected = ref2.published_flight_passenger_load.set_index("flight_key").loc[faults.low_seats]
    assert body["passengers_boarded"] == expected["passengers_boarded"]
    assert body["load_factor"] == pytest.approx(float(expected["load_factor"]))
    assert api.flight(faults.overboarded).get_json()["data"]["load_factor"] is None
    flights_now, boarded_now = route_row(warehouse_url, low)
    assert flights_now == flights_on_route
    assert boarded_now == boarded_on_route + expected["passengers_boarded"]


def _flight_date(key: str) -> date:
    return date.fromisoformat(key.split("-", 1)[1][:10])


def _route_of_published(ref: ref_impl.Reference, flight: pd.Series) -> tuple[int, int]:
    """Flights and boarded passengers of the flight's route and day, from published rows only."""
    f = ref.published_fact_flight
    same = f[
        (f["flight_date"] == flight["flight_date"])
        & (f["carrier"] == flight["carrier"])
        & (f["origin"] == flight["origin"])
        & (f["destination"] == flight["destination"])
    ]
    loads = ref.published_flight_passenger_load.set_index("flight_key")["passengers_boarded"]
    return len(same), int(sum(loads.get(k, 0) for k in same["flight_key"]))


def test_batch_above_reject_threshold_blocks(env, amqp_url, topology, warehouse_url):
    events = simulated_month(days=2, slot_step=3, pax_keep=20)
    first_day = START.date().isoformat()
    earlier = [e for e in events if e["payload"]["flight_date"] <= first_day]
    later = [e for e in events if e["payload"]["flight_date"] > first_day]
    publish(amqp_url, topology, delivered(earlier, SEED))
    run_once(env)
    faults = Faults(events)
    arrived = faults.flights[faults.flights["arrived"]]
    later_keys = sorted(
        k for k, f in arrived.iterrows() if f["flight_date"].isoformat() > first_day
    )
    typos = faults.rng.sample(later_keys, 12)
    dirty = [
        faults.status(k, timedelta(hours=1), "ops_acars", destination=UNKNOWN_CODE) for k in typos
    ]
    batch = later + dirty
    audited = len({ref_impl.flight_key(e["payload"]) for e in later if "status" in e["payload"]})
    assert audited < 12 * 100  # 12 rows: above 1 % and at least LATAM_QUALITY_REJECT_MIN_ROWS
    publish(amqp_url, topology, delivered(batch, SEED + 2))
    url = warehouse_url
    published = [
        f"SELECT * FROM curated.{t} ORDER BY flight_key"
        for t in ("fact_flight", "flight_passenger_load")
    ]
    snapshot = {
        "published": [read_table(url, sql) for sql in published],
        "marts": read_table(url, "SELECT * FROM marts.route_daily_performance ORDER BY 1, 2, 3, 4"),
        "watermarks": query(url, WATERMARKS),
    }
    # the table, the share and the setting to change, on one line
    reason = re.compile(
        r"curated\.fact_flight: 12 of (\d+) row\(s\) [^\n]*held back \(([\d.]+)%\)[^\n]*"
        r"LATAM_QUALITY_REJECT_MAX_PCT=1%"
    )
    for attempt in (1, 2):  # the watermarks stayed: the same batch blocks again
        proc = latam(env, "run-once")
        assert proc.returncode == 1, proc.stderr[-3000:]
        found = reason.search(proc.stderr)
        assert found, proc.stderr[-3000:]
        assert int(found.group(1)) >= audited
        assert float(found.group(2)) == pytest.approx(100 * 12 / int(found.group(1)), abs=0.001)
        assert "run failed" in proc.stdout
        for sql, before in zip(published, snapshot["published"], strict=True):
            assert read_table(url, sql).equals(before), sql
        assert read_table(
            url, "SELECT * FROM marts.route_daily_performance ORDER BY 1, 2, 3, 4"
        ).equals(snapshot["marts"])
        assert query(url, WATERMARKS) == snapshot["watermarks"]
        assert listed_rejects(env) == {}
        blocked = query(
            url,
            "SELECT count(*) FROM quality.audit_batch"
            " WHERE table_name = 'curated.fact_flight' AND blocked",
        )
        assert blocked == [(attempt,)]

    # the operator accepts the share for this batch: the good rows publish, the typos wait
    proc = latam({**env, "LATAM_QUALITY_REJECT_MAX_PCT": "50"}, "run-once")
    assert proc.returncode == 0, proc.stderr[-3000:]
    ref = ref_impl.compute(earlier + batch, get_settings().pii_hash_key.get_secret_value())
    assert ref.rejects == {(FACT, k, "flight_airports_known") for k in typos}
    assert set(listed_rejects(env)) == ref.rejects
    assert_warehouse_matches(url, ref)
