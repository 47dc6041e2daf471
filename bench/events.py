"""Event bodies for the benchmarks: the project's simulator when present, else a fast generator.

The fallback produces contract-valid events in the proportions of real traffic (about 15% flight
status, 45% passenger events, 40% position reports) with realistic field values and sizes, so a
benchmark measures the same validation and insert work as production. It is deterministic per seed:
the same seed yields the same bodies (and message ids), which lets a run publish the same set twice.
"""

from __future__ import annotations

import random
import struct
from collections import Counter
from collections.abc import Iterator
from datetime import date, timedelta
from itertools import islice
from pathlib import Path

import orjson

from latam_dagster.ingest.topology import routing_key_for

MIX: tuple[tuple[str, float], ...] = (
    ("flight_status", 0.15),
    ("passenger_event", 0.45),
    ("position_report", 0.40),
)
SOURCE_SYSTEMS = (
    "res-amadeus",
    "dcs-altea",
    "flightops-netline",
    "adsb-feed",
    "acars-sita",
    "web-checkin",
    "app-mobile",
    "kiosk-airport",
    "gds-sabre",
    "ops-control",
)
CARRIERS = ("LA", "JJ", "4M", "XL", "LP", "4C")
AIRPORTS = (
    "SCL", "LIM", "GRU", "GIG", "BSB", "BOG", "MDE", "EZE", "AEP", "UIO",
    "GYE", "CUZ", "MVD", "ASU", "LPB", "VVI", "PMC", "ANF", "CCP", "MIA",
)  # fmt: skip
FLIGHT_STATUSES = ("scheduled", "boarding", "departed", "arrived", "cancelled", "diverted")
PASSENGER_ACTIONS = ("booked", "checked_in", "boarded", "cancelled")
CABINS = ("economy", "economy", "economy", "premium_economy", "business", None)
CURRENCIES = ("USD", "CLP", "BRL", "PEN", "COP", "ARS")
BASE_DAY = date(2026, 11, 27)


def _flights(rng: random.Random, count: int) -> list[tuple[str, int, str, str, str, str]]:
    """A fixed pool of (carrier, number, date, origin, destination, tail) that events refer to."""
    pool = []
    for _ in range(count):
        origin, destination = rng.sample(AIRPORTS, 2)
        day = BASE_DAY + timedelta(days=rng.randint(-2, 2))
        tail = f"{rng.choice(('CC', 'PR', 'OB', 'HC'))}-{rng.choice('BCDX')}{rng.randint(100, 999)}"
        pool.append(
            (rng.choice(CARRIERS), rng.randint(1, 9999), day.isoformat(), origin, destination, tail)
        )
    return pool


def _timestamp(rng: random.Random, day: str) -> str:
    s = int(rng.random() * 86_400)
    return f"{day}T{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}+00:00"


def _message_id(rng: random.Random) -> str:
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"


def fallback_events(seed: int, count: int, systems: int = 10) -> Iterator[dict]:
    """Contract-valid event dicts in the real traffic mix."""
    rng = random.Random(seed)
    flights = _flights(rng, 2000)
    sources = SOURCE_SYSTEMS[: max(1, min(systems, len(SOURCE_SYSTEMS)))]
    flight_share, passenger_share = MIX[0][1], MIX[1][1]
    for _ in range(count):
        draw = rng.random()
        if draw < flight_share:
            kind = "flight_status"
        elif draw < flight_share + passenger_share:
            kind = "passenger_event"
        else:
            kind = "position_report"
        carrier, number, day, origin, destination, tail = rng.choice(flights)
        if kind == "flight_status":
            dep = _timestamp(rng, day)
            payload: dict = {
                "carrier": carrier,
                "flight_number": number,
                "flight_date": day,
                "origin": origin,
                "destination": destination,
                "status": rng.choice(FLIGHT_STATUSES),
                "scheduled_departure": dep,
                "scheduled_arrival": _timestamp(rng, day),
                "actual_departure": dep if rng.random() < 0.5 else None,
                "tail_number": tail,
                "seat_capacity": rng.choice((174, 186, 220, 238, 313)),
            }
        elif kind == "passenger_event":
            payload = {
                "passenger_ref": f"PNR{rng.getrandbits(40):010X}-{rng.randint(1, 9)}",
                "carrier": carrier,
                "flight_number": number,
                "flight_date": day,
                "origin": origin,
                "action": rng.choice(PASSENGER_ACTIONS),
                "cabin": rng.choice(CABINS),
                "fare_amount": round(rng.uniform(40, 2500), 2),
                "currency": rng.choice(CURRENCIES),
            }
        else:
            payload = {
                "tail_number": tail,
                "latitude": round(rng.uniform(-55, 12), 5),
                "longitude": round(rng.uniform(-80, -35), 5),
                "altitude_ft": rng.randint(0, 41_000),
                "ground_speed_kt": rng.randint(0, 520),
                "heading_deg": round(rng.uniform(0, 359.9), 1),
            }
            if rng.random() < 0.7:
                payload.update(
                    carrier=carrier, flight_number=number, flight_date=day, origin=origin
                )
        yield {
            "message_id": _message_id(rng),
            "schema_version": 1,
            "event_type": kind,
            "event_time": _timestamp(rng, day),
            "source_system": rng.choice(sources),
            "payload": payload,
        }


def messages(
    seed: int, count: int, source: str = "auto"
) -> tuple[str, Iterator[tuple[str, bytes]]]:
    """(source name, iterator of (routing key, body)).

    `auto` takes the project's simulator when it is installed (realistic traffic) and this
    module's generator otherwise; `simulator` and `fallback` force one of them.
    """
    generate = None
    if source in ("auto", "simulator"):
        try:
            from latam_dagster.simulator import generate
        except ImportError:
            if source == "simulator":
                raise
    if generate is None:
        return "bench.events", (
            (routing_key_for(e), orjson.dumps(e)) for e in fallback_events(seed, count)
        )

    def from_simulator() -> Iterator[tuple[str, bytes]]:
        for m in generate(seed, systems=10, events=count):
            body = m.body.encode("utf-8") if isinstance(m.body, str) else bytes(m.body)
            yield m.routing_key, body

    return "latam_dagster.simulator", from_simulator()


_RECORD_HEADER = struct.Struct("<HI")  # routing-key length, body length


def record(seed: int, count: int, path: Path, source: str = "auto") -> tuple[str, Counter[str]]:
    """Generate `count` messages once into a file, so every publish of a run replays the same
    bytes without paying for generation again. Returns the source and the count per family."""
    source, stream = messages(seed, count, source)
    families: Counter[str] = Counter()
    with path.open("wb") as out:
        for routing_key, body in islice(stream, count):
            key = routing_key.encode("utf-8")
            out.write(_RECORD_HEADER.pack(len(key), len(body)))
            out.write(key)
            out.write(body)
            families[routing_key.partition(".")[0]] += 1
    return source, families


def replay(path: Path) -> Iterator[tuple[str, bytes]]:
    """The (routing key, body) pairs written by `record`, in order."""
    with path.open("rb") as f:
        while header := f.read(_RECORD_HEADER.size):
            key_len, body_len = _RECORD_HEADER.unpack(header)
            yield f.read(key_len).decode("utf-8"), f.read(body_len)
