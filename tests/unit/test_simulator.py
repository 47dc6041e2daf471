"""The event simulator: deterministic, contract-valid, realistic, lazy."""

from __future__ import annotations

import math
import random
import re
import statistics
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import UTC, datetime
from functools import cache
from itertools import islice
from zoneinfo import ZoneInfo

import airportsdata
import orjson
import pytest
from click.testing import CliRunner

from latam_dagster.cli.simulate import simulate
from latam_dagster.contracts import InvalidEvent, ValidEvent, validate_body
from latam_dagster.ingest.topology import routing_key_for
from latam_dagster.simulator import DEFAULT_START, SimMessage, generate, run, source_systems, world
from latam_dagster.simulator import runner as simulator_runner
from latam_dagster.simulator.encoding import rfc3339, uuid4_text
from latam_dagster.simulator.faults import DEFECTS
from latam_dagster.simulator.network import AIRCRAFT, load_network
from latam_dagster.simulator.operations import Operations

MAX = 1 << 20
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
RANK = {"scheduled": 0, "boarding": 1, "departed": 2, "arrived": 3, "cancelled": 3, "diverted": 3}


@cache
def airports() -> dict:
    return airportsdata.load("IATA")


@cache
def sample_events(n: int = 200_000, seed: int = 11) -> tuple[dict, ...]:
    """A slice of the world in event-time order, shared by the realism tests."""
    return tuple(e for _, e in islice(world(seed, systems=20), n))


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


def flight_key(p: dict) -> tuple:
    return p["carrier"], p["flight_number"], p["flight_date"], p["origin"]


def flights_of(events: tuple[dict, ...]) -> dict[tuple, dict]:
    """Merged status payloads per flight key (later events win, as in the curated layer)."""
    out: dict[tuple, dict] = {}
    for e in events:
        if e["event_type"] == "flight_status":
            out.setdefault(flight_key(e["payload"]), {}).update(e["payload"])
    return out


# --- determinism ---------------------------------------------------------------------------------


def _bytes(seed: int, **kw) -> list[tuple[str, bytes, bool]]:
    return [(m.routing_key, m.body, m.valid) for m in generate(seed, events=4000, **kw)]


def test_same_seed_same_bytes_different_seed_different():
    kw = dict(duplicate_share=0.02, out_of_order_share=0.05, invalid_share=0.01, systems=7)
    first = _bytes(42, **kw)
    assert len(first) == 4000
    assert first == _bytes(42, **kw)
    other = _bytes(43, **kw)
    assert other != first
    assert not {b for _, b, ok in first if ok} & {b for _, b, ok in other if ok}


def test_count_from_events_or_rate_times_duration_and_prefix_stable():
    assert len(list(generate(1, rate=50, duration_s=7))) == 350
    assert len(list(generate(1, events=0))) == 0
    short = [m.body for m in generate(3, events=500)]
    longer = [m.body for m in generate(3, events=1500)]
    assert longer[:500] == short


def test_faults_do_not_change_the_world():
    """Fault shares use their own RNG: the valid originals are the same events in both runs."""
    plain = {m.body for m in generate(9, events=3000)}
    faulty = [m for m in generate(9, events=3000, invalid_share=0.05, duplicate_share=0.05)]
    originals = [m.body for m in faulty if m.kind == "event"]
    assert set(originals) <= plain


def test_default_start_is_fixed_and_events_start_there():
    first = next(iter(generate(0, events=1)))
    assert first.event is not None
    assert ts(first.event["event_time"]) >= DEFAULT_START
    custom = datetime(2027, 3, 1, 12, tzinfo=UTC)
    ev = [m.event for m in generate(0, events=200, start=custom)]
    assert min(ts(e["event_time"]) for e in ev) >= custom


# --- contract ------------------------------------------------------------------------------------


def test_every_valid_message_passes_and_every_invalid_fails():
    msgs = list(
        generate(
            5,
            systems=12,
            events=20_000,
            duplicate_share=0.02,
            out_of_order_share=0.05,
            invalid_share=0.05,
        )
    )
    kinds = Counter(m.kind for m in msgs)
    assert set(DEFECTS) <= set(kinds), kinds
    for m in msgs:
        result = validate_body(m.body, MAX)
        if m.valid:
            assert isinstance(result, ValidEvent), (m.body, result)
            assert m.event == orjson.loads(m.body)
            assert m.routing_key == routing_key_for(m.event)
        else:
            assert isinstance(result, InvalidEvent), (m.kind, m.body)
            assert m.event is None
            assert m.routing_key.split(".")[0] in ("flight", "passenger", "position")


def test_envelope_fields():
    msgs = list(generate(8, systems=30, events=5000))
    ids = [m.event["message_id"] for m in msgs]
    assert len(set(ids)) == len(ids)
    assert all(UUID4.match(i) for i in ids)
    names = set(source_systems(30).names)
    for m in msgs:
        e = m.event
        assert e["schema_version"] == 1
        assert re.fullmatch(r"[a-z0-9_-]{1,64}", e["source_system"])
        assert e["source_system"] in names
        assert ts(e["event_time"]).tzinfo is not None


def test_uuid_and_timestamp_encoders_match_the_stdlib():
    import uuid
    from datetime import timedelta, timezone

    rng = random.Random(1)
    for _ in range(2000):
        bits = rng.getrandbits(128)
        assert uuid4_text(bits) == str(uuid.UUID(int=bits, version=4))
        ms = rng.randrange(0, 4_000_000_000_000)
        off = rng.choice([0, -10800, -14400, -18000, -21600, 3600])
        expected = datetime.fromtimestamp(ms / 1000, timezone(timedelta(seconds=off)))
        assert ts(rfc3339(ms, off)) == expected.replace(microsecond=(ms % 1000) * 1000)
        assert ts(rfc3339(ms, off)).utcoffset() == timedelta(seconds=off)


@pytest.mark.parametrize("n", [1, 3, 10, 50])
def test_systems_sets_the_number_of_distinct_sources(n):
    ss = source_systems(n)
    assert len(set(ss.names)) == n
    seen = {m.event["source_system"] for m in generate(2, systems=n, events=20_000)}
    assert seen == set(ss.names)


# --- realism -------------------------------------------------------------------------------------


def test_network_is_real_latam():
    net = load_network()
    db = airports()
    codes = "SCL LIM GRU GIG BOG MDE UIO EZE CUZ AEP BSB CNF POA CTG GYE MVD ASU PTY MIA MAD"
    for code in codes.split(" "):
        ap = net.airports[code]
        assert (ap.lat, ap.lon) == (float(db[code]["lat"]), float(db[code]["lon"]))
        assert ap.tz.key == db[code]["tz"]
    assert {"LA", "JJ", "4M", "XL", "H2"} <= set(net.carriers)
    tails = [t for s in net.slots for t in s.tails]
    assert len(tails) == len(set(tails))
    assert all(re.fullmatch(r"[A-Z]{2}-[A-Z]{3}", t) for t in tails)
    assert "PR-XPA" in tails and "CC-BGA" in tails
    assert AIRCRAFT["A320"].seats == 174 and AIRCRAFT["A321"].seats == 220
    assert AIRCRAFT["B789"].seats == 313
    numbers = [(s.carrier, n) for s in net.slots for n in (s.out_number, s.ret_number)]
    assert len(numbers) == len(set(numbers))
    assert all(1 <= n <= 9999 for _, n in numbers)


def test_status_progression_is_consistent_per_flight():
    by_flight: dict[tuple, list[tuple[datetime, str]]] = defaultdict(list)
    for e in sample_events():
        if e["event_type"] == "flight_status":
            p = e["payload"]
            by_flight[flight_key(p)].append((ts(e["event_time"]), p["status"]))
    assert len(by_flight) > 500
    finished = Counter()
    for key, seq in by_flight.items():
        seq.sort()
        times = [t for t, _ in seq]
        assert len(set(times)) == len(times), key
        ranks = [RANK[s] for _, s in seq]
        assert ranks == sorted(ranks), (key, seq)
        terminal = [s for _, s in seq if RANK[s] == 3]
        assert len(terminal) <= 1, (key, seq)
        if terminal:
            assert seq[-1][1] == terminal[0]
            finished[terminal[0]] += 1
    assert finished["arrived"] > 150


def test_flight_date_is_local_date_of_scheduled_departure_at_origin():
    checked = 0
    for e in sample_events():
        p = e["payload"]
        if e["event_type"] == "flight_status" and p.get("scheduled_departure"):
            tz = ZoneInfo(airports()[p["origin"]]["tz"])
            sched = ts(p["scheduled_departure"])
            assert sched.astimezone(tz).date().isoformat() == p["flight_date"]
            assert sched.utcoffset() == sched.astimezone(tz).utcoffset()
            checked += 1
    assert checked > 500
    dates = {e["payload"]["flight_date"] for e in sample_events() if "flight_date" in e["payload"]}
    assert len(dates) >= 4


def test_delays_cancellations_and_diversions_are_realistic():
    flights = flights_of(sample_events())
    dep = [
        (ts(f["actual_departure"]) - ts(f["scheduled_departure"])).total_seconds() / 60
        for f in flights.values()
        if f.get("actual_departure") and f.get("scheduled_departure")
    ]
    assert len(dep) > 250
    assert -10 <= statistics.median(dep) <= 12
    assert 0.02 < sum(d < 0 for d in dep) / len(dep) < 0.3  # some early
    assert 0.02 < sum(d > 60 for d in dep) / len(dep) < 0.15  # a long tail
    # rates over many operated legs
    ops = Operations(load_network(), random.Random(4), int(DEFAULT_START.timestamp() * 1000))
    legs = [f for _, f in islice(ops.flights(), 20_000)]
    cancelled = sum(f.cancel_at is not None for f in legs) / len(legs)
    diverted = sum(f.divert_at is not None for f in legs) / len(legs)
    assert 0.01 < cancelled < 0.035
    assert 0.004 < diverted < 0.02


def _unit(lat: float, lon: float) -> tuple[float, float, float]:
    la, lo = math.radians(lat), math.radians(lon)
    return math.cos(la) * math.cos(lo), math.cos(la) * math.sin(lo), math.sin(la)


def test_positions_in_range_and_on_the_great_circle():
    events = sample_events()
    dest = {k: f["destination"] for k, f in flights_of(events).items()}
    tails = {k: f.get("tail_number") for k, f in flights_of(events).items()}
    db = airports()
    n = 0
    for e in events:
        if e["event_type"] != "position_report":
            continue
        p = e["payload"]
        n += 1
        assert -90 <= p["latitude"] <= 90 and -180 <= p["longitude"] <= 180
        assert 0 <= p.get("heading_deg", 0) < 360
        assert 0 <= p.get("altitude_ft", 0) <= 45_000
        assert 0 <= p.get("ground_speed_kt", 0) < 700
        key = flight_key(p)
        assert p["tail_number"] == tails[key]
        o, d = db[p["origin"]], db[dest[key]]
        a, b, x = (
            _unit(o["lat"], o["lon"]),
            _unit(d["lat"], d["lon"]),
            _unit(p["latitude"], p["longitude"]),
        )
        normal = (a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0])
        norm = math.sqrt(sum(c * c for c in normal))
        cross_km = abs(math.asin(sum(c * y for c, y in zip(normal, x, strict=True)) / norm)) * 6371
        assert cross_km < 2.0, (p, dest[key])

        def ang(u, v):
            return math.acos(max(-1.0, min(1.0, sum(i * j for i, j in zip(u, v, strict=True)))))

        assert ang(a, x) + ang(x, b) == pytest.approx(ang(a, b), abs=1e-5)
        if "heading_deg" in p:  # the track points along the great circle to the destination
            lat, lon = math.radians(p["latitude"]), math.radians(p["longitude"])
            lat2, dlon = math.radians(d["lat"]), math.radians(d["lon"]) - lon
            bearing = math.degrees(
                math.atan2(
                    math.sin(dlon) * math.cos(lat2),
                    math.cos(lat) * math.sin(lat2)
                    - math.sin(lat) * math.cos(lat2) * math.cos(dlon),
                )
            )
            assert abs((bearing - p["heading_deg"] + 180) % 360 - 180) < 2.0
    assert n > 5000


def test_passenger_counts_respect_capacity_and_funnel():
    events = sample_events()
    flights = flights_of(events)
    latest: dict[tuple, dict[str, str]] = defaultdict(dict)
    order: dict[tuple, list[str]] = defaultdict(list)
    for e in events:  # already in event-time order
        if e["event_type"] == "passenger_event":
            p = e["payload"]
            assert p["passenger_ref"].startswith("PAX-")
            if p.get("fare_amount") is not None:
                assert p["fare_amount"] >= 0 and re.fullmatch(r"[A-Z]{3}", p["currency"])
            latest[flight_key(p)][p["passenger_ref"]] = p["action"]
            order[(flight_key(p), p["passenger_ref"])].append(p["action"])
    step = {"booked": 0, "checked_in": 1, "cancelled": 1, "boarded": 2}
    for actions in order.values():
        assert [step[a] for a in actions] == sorted(step[a] for a in actions)
        assert len(actions) == len(set(actions))
    full = 0
    for key, pax in latest.items():
        capacity = flights[key]["seat_capacity"]
        c = Counter(pax.values())
        booked = c["booked"] + c["checked_in"] + c["boarded"]
        checked = c["checked_in"] + c["boarded"]
        assert len(pax) <= capacity
        assert c["boarded"] <= checked <= booked <= capacity
        full += c["boarded"] > 0.4 * capacity
    assert full > 50
    currencies = {
        e["payload"].get("currency") for e in events if e["event_type"] == "passenger_event"
    }
    assert {"USD", "CLP", "BRL", "PEN", "COP"} <= currencies


# --- delivery faults -----------------------------------------------------------------------------


def test_duplicate_and_invalid_shares_are_roughly_as_asked():
    msgs = list(generate(21, events=40_000, duplicate_share=0.05, invalid_share=0.02))
    kinds = Counter("event" if m.kind == "event" else "dup" if m.valid else "bad" for m in msgs)
    assert kinds["dup"] / len(msgs) == pytest.approx(0.05, abs=0.006)
    assert kinds["bad"] / len(msgs) == pytest.approx(0.02, abs=0.004)
    originals = {m.body for m in msgs if m.kind == "event"}
    ids = {m.event["message_id"]: m.body for m in msgs if m.kind == "event"}
    for m in msgs:
        if m.kind == "duplicate":
            assert m.body in originals
            assert ids[m.event["message_id"]] == m.body


def test_out_of_order_delivery():
    def inversions(msgs: list[SimMessage]) -> int:
        times = [ts(m.event["event_time"]) for m in msgs]
        return sum(b < a for a, b in zip(times, times[1:], strict=False))

    assert inversions(list(generate(4, events=10_000))) == 0
    late = list(generate(4, events=10_000, out_of_order_share=0.1))
    assert 300 < inversions(late) < 2000
    assert {m.body for m in late} <= {
        m.body for _, m in zip(range(12_000), generate(4), strict=False)
    }


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError):
        generate(1, systems=0)
    with pytest.raises(ValueError):
        generate(1, invalid_share=1.5)
    with pytest.raises(ValueError):
        generate(1, duplicate_share=0.6, invalid_share=0.6)


# --- resources -----------------------------------------------------------------------------------


MEMORY_PROBE = """
import resource
from latam_dagster.simulator import generate
it = generate(3, events=200_000, duplicate_share=0.01, out_of_order_share=0.05, invalid_share=0.001)
for _ in zip(range(5_000), it):
    pass
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
n = 5_000 + sum(1 for _ in it)
print(n, before, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def test_memory_stays_bounded_while_streaming():
    """200k messages drawn lazily: memory holds the flights in the horizon, not the messages.

    Measured as peak RSS growth in a fresh interpreter (tracemalloc would slow this 5-10x).
    """
    out = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE], capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stderr
    n, before_kb, after_kb = map(int, out.stdout.split())
    assert n == 200_000
    # keeping the messages would take ~200 MB; streaming grows by the booking horizon only
    assert (after_kb - before_kb) * 1024 < 32 * 1024 * 1024, (before_kb, after_kb)


def test_is_lazy():
    # a billion events: only a lazy generator yields its first one
    first = next(iter(generate(1, events=10**9)))
    assert first.valid


# --- publishing and command line -----------------------------------------------------------------


class FakePublisher:
    def __init__(self, fail_after: int | None = None):
        self.sent: list[tuple[str, bytes]] = []
        self.fail_after = fail_after
        self.closed = False

    def publish_body(self, body: bytes, routing_key: str) -> None:
        if self.fail_after is not None and len(self.sent) >= self.fail_after:
            raise KeyboardInterrupt
        self.sent.append((routing_key, body))

    def close(self) -> None:
        self.closed = True


def test_run_publishes_everything_with_pacing(monkeypatch):
    msgs = list(generate(6, events=300, invalid_share=0.05))
    pub = FakePublisher()
    assert run(pub, msgs, None) == 300
    assert pub.sent == [(m.routing_key, m.body) for m in msgs]

    class FakeClock:  # the runner's clock: sleeping moves it on, nothing waits for real
        now = 100.0

        def perf_counter(self) -> float:
            return self.now

        def sleep(self, seconds: float) -> None:
            self.now += seconds

    clock = FakeClock()
    monkeypatch.setattr(simulator_runner, "time", clock)
    sent_at: list[float] = []
    paced = FakePublisher()
    assert run(paced, msgs[:101], 1000.0, on_published=lambda _m: sent_at.append(clock.now)) == 101
    # the i-th message leaves at i / rate seconds
    assert sent_at == pytest.approx([100.0 + i / 1000.0 for i in range(101)])


def test_cli_writes_parseable_jsonl_to_stdout():
    result = CliRunner().invoke(simulate, ["--events", "3000", "--seed", "2", "--output", "-"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 3000
    events = [orjson.loads(line) for line in lines]
    assert all(isinstance(validate_body(line.encode(), MAX), ValidEvent) for line in lines)
    assert [orjson.dumps(e) for e in events] == [m.body for m in generate(2, events=3000)]
    assert "3000 messages" in result.stderr


def test_cli_writes_only_single_line_utf8_invalid_bodies(tmp_path):
    out = tmp_path / "events.jsonl"
    args = ["--rate", "100", "--duration", "30", "--seed", "5", "--systems", "4"]
    args += ["--invalid", "0.05", "--duplicates", "0.02", "--out-of-order", "0.05"]
    result = CliRunner().invoke(simulate, [*args, "--output", str(out)])
    assert result.exit_code == 0, result.output
    lines = out.read_bytes().split(b"\n")
    assert lines[-1] == b""
    lines = lines[:-1]
    expected = [m for m in generate(5, systems=4, events=3000, invalid_share=0.05,
                                    duplicate_share=0.02, out_of_order_share=0.05)]  # fmt: skip
    kept = [m.body for m in expected if m.body and b"\n" not in m.body and _utf8(m.body)]
    assert lines == kept
    assert len(kept) < 3000
    assert f"wrote {len(kept)} messages" in result.output


def _utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def test_cli_publishes_and_handles_ctrl_c(monkeypatch):
    import latam_dagster.ingest.publish as publish

    made: list[FakePublisher] = []

    def fake(amqp_url, topo, declare_topology=True):
        made.append(FakePublisher(fail_after=250))
        return made[-1]

    monkeypatch.setattr(publish, "Publisher", fake)
    result = CliRunner().invoke(simulate, ["--forever", "--rate", "100000", "--seed", "1"])
    assert result.exit_code == 0, result.output
    assert "published 250 messages" in result.output
    assert made[0].closed and len(made[0].sent) == 250
