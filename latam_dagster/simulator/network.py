"""The simulated LATAM network: airports, fleets and a daily timetable of aircraft rotations.

The network is fixed (independent of the seed) so that every run talks about the same routes,
flight numbers and tails; the seed only drives how a given day operates. Each timetable slot is
one aircraft rotation hub -> outstation -> hub, which keeps a tail from flying two legs at once
and lets late arrivals push back the next departure of the same aircraft.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from itertools import count
from zoneinfo import ZoneInfo

import airportsdata

EARTH_RADIUS_KM = 6371.0


@dataclass(frozen=True, slots=True)
class Airport:
    """An airport as the events see it: IATA code, position, time zone and country."""

    iata: str
    lat: float
    lon: float
    tz: ZoneInfo
    country: str


@dataclass(frozen=True, slots=True)
class AircraftType:
    """Cabin layout (LATAM-like configurations) and cruise figures of one aircraft type."""

    code: str
    seats: int
    business: int
    premium_economy: int
    cruise_kt: int
    cruise_ft: int

    @property
    def widebody(self) -> bool:
        return self.seats > 230


AIRCRAFT: dict[str, AircraftType] = {
    a.code: a
    for a in (
        AircraftType("A319", 144, 0, 12, 440, 35000),
        AircraftType("A320", 174, 0, 12, 450, 37000),
        AircraftType("A321", 220, 0, 16, 450, 37000),
        AircraftType("B763", 238, 30, 0, 470, 37000),
        AircraftType("B788", 247, 30, 0, 485, 39000),
        AircraftType("B789", 313, 30, 57, 490, 40000),
        AircraftType("B77W", 410, 38, 50, 490, 37000),
    )
}

# (carrier, aircraft type) -> first registration of its tail pool; tails count up from here.
TAIL_START: dict[tuple[str, str], str] = {
    ("LA", "A319"): "CC-CPA",
    ("LA", "A320"): "CC-BAA",
    ("LA", "A321"): "CC-BEA",
    ("LA", "B763"): "CC-CXA",
    ("LA", "B788"): "CC-BDA",
    ("LA", "B789"): "CC-BGA",
    ("JJ", "A320"): "PR-MHA",
    ("JJ", "A321"): "PR-XPA",
    ("JJ", "B763"): "PT-MOA",
    ("JJ", "B77W"): "PT-MUA",
    ("4C", "A320"): "CC-BCA",
    ("4C", "B763"): "CC-CWA",
    ("XL", "A319"): "HC-CJA",
    ("XL", "A320"): "HC-CTA",
    ("4M", "A320"): "LV-BFA",
    ("H2", "A320"): "CC-AWA",
    ("H2", "A321"): "CC-AZA",
}

# (carrier, hub, outstation, aircraft type, daily frequency, first flight number). The outbound
# of slot k is `number + 2k`, its return `number + 2k + 1`.
ROUTES: tuple[tuple[str, str, str, str, int, int], ...] = (
    # LATAM Airlines (Chile), Santiago hub
    ("LA", "SCL", "LIM", "A321", 4, 600),
    ("LA", "SCL", "GRU", "A321", 3, 750),
    ("LA", "SCL", "GIG", "A321", 1, 760),
    ("LA", "SCL", "EZE", "A320", 4, 440),
    ("LA", "SCL", "AEP", "A320", 2, 460),
    ("LA", "SCL", "MVD", "A320", 1, 470),
    ("LA", "SCL", "ASU", "A320", 1, 480),
    ("LA", "SCL", "BOG", "B788", 1, 574),
    ("LA", "SCL", "MIA", "B789", 1, 500),
    ("LA", "SCL", "MAD", "B789", 1, 704),
    ("LA", "SCL", "PUQ", "A320", 3, 280),
    ("LA", "SCL", "ANF", "A320", 4, 340),
    ("LA", "SCL", "CCP", "A320", 3, 30),
    ("LA", "SCL", "IQQ", "A321", 2, 130),
    ("LA", "SCL", "CJC", "A320", 3, 350),
    ("LA", "SCL", "PMC", "A320", 3, 250),
    # LATAM Airlines Peru, Lima hub
    ("LA", "LIM", "CUZ", "A320", 6, 2020),
    ("LA", "LIM", "AQP", "A320", 3, 2100),
    ("LA", "LIM", "TRU", "A319", 2, 2200),
    ("LA", "LIM", "BOG", "A320", 2, 2400),
    ("LA", "LIM", "EZE", "A320", 1, 2430),
    ("LA", "LIM", "GRU", "A320", 1, 2450),
    ("LA", "LIM", "MIA", "B763", 1, 2482),
    ("LA", "LIM", "MAD", "B789", 1, 2486),
    ("LA", "LIM", "UIO", "A319", 1, 2500),
    ("LA", "LIM", "GYE", "A319", 1, 2520),
    ("LA", "LIM", "PTY", "A320", 1, 2540),
    ("LA", "LIM", "MDE", "A320", 1, 2550),
    # LATAM Airlines Brasil, Sao Paulo hub
    ("JJ", "GRU", "GIG", "A320", 6, 3300),
    ("JJ", "GRU", "BSB", "A321", 4, 3500),
    ("JJ", "GRU", "CNF", "A320", 3, 3200),
    ("JJ", "GRU", "POA", "A320", 3, 3100),
    ("JJ", "GRU", "FLN", "A320", 2, 3150),
    ("JJ", "GRU", "CWB", "A320", 3, 3050),
    ("JJ", "GRU", "REC", "A321", 2, 3400),
    ("JJ", "GRU", "SSA", "A321", 2, 3450),
    ("JJ", "GRU", "FOR", "A321", 2, 3600),
    ("JJ", "GRU", "IGU", "A320", 1, 3700),
    ("JJ", "GRU", "MIA", "B763", 1, 8190),
    ("JJ", "GRU", "MAD", "B77W", 1, 8064),
    ("JJ", "GRU", "EZE", "A320", 2, 8010),
    ("JJ", "GRU", "ASU", "A320", 1, 8030),
    ("JJ", "GRU", "MVD", "A320", 1, 8040),
    # LATAM Airlines Colombia, Bogota hub
    ("4C", "BOG", "MDE", "A320", 6, 4000),
    ("4C", "BOG", "CTG", "A320", 4, 4100),
    ("4C", "BOG", "CLO", "A320", 3, 4200),
    ("4C", "BOG", "BAQ", "A320", 3, 4300),
    ("4C", "BOG", "SMR", "A320", 1, 4400),
    ("4C", "MDE", "CTG", "A320", 2, 4500),
    ("4C", "BOG", "MIA", "B763", 1, 4600),
    # LATAM Airlines Ecuador
    ("XL", "UIO", "GYE", "A319", 4, 1400),
    ("XL", "GYE", "GPS", "A320", 1, 1420),
    ("XL", "UIO", "GPS", "A320", 1, 1440),
    # LATAM Airlines Argentina
    ("4M", "EZE", "ASU", "A320", 1, 1240),
    ("4M", "AEP", "COR", "A320", 2, 1600),
    ("4M", "AEP", "MDZ", "A320", 2, 1620),
    ("4M", "AEP", "BRC", "A320", 1, 1640),
    # SKY Airline (partner traffic on the same feeds)
    ("H2", "SCL", "LIM", "A321", 2, 500),
    ("H2", "SCL", "ANF", "A320", 3, 100),
    ("H2", "SCL", "PUQ", "A320", 1, 110),
    ("H2", "SCL", "EZE", "A320", 1, 530),
    ("H2", "SCL", "PMC", "A320", 1, 120),
    ("H2", "LIM", "CUZ", "A320", 2, 5000),
)

# Local currency of each country (point of sale); Ecuador and Panama sell in US dollars.
CURRENCY_OF_COUNTRY: dict[str, str] = {
    "CL": "CLP",
    "PE": "PEN",
    "BR": "BRL",
    "CO": "COP",
    "AR": "ARS",
    "UY": "UYU",
    "PY": "USD",
    "EC": "USD",
    "PA": "USD",
    "US": "USD",
    "ES": "EUR",
}
# Units of each currency per US dollar, and how many decimals its fares carry.
USD_RATE: dict[str, tuple[float, int]] = {
    "USD": (1.0, 2),
    "CLP": (940.0, 0),
    "PEN": (3.75, 2),
    "BRL": (5.4, 2),
    "COP": (4100.0, 0),
    "ARS": (980.0, 2),
    "UYU": (40.0, 2),
    "EUR": (0.92, 2),
}

HUB_TURN_MIN = 50
WIDEBODY_TURN_MIN = 150


def great_circle_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Haversine distance; drives block times and fares."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(h))


def block_minutes(a: Airport, b: Airport) -> int:
    """Scheduled gate-to-gate time: taxi allowance plus cruise, a little slower flying west."""
    km = great_circle_km(a.lat, a.lon, b.lat, b.lon)
    minutes = 25 + km / 13.5
    if b.lon < a.lon:
        minutes *= 1.04
    return int(round(minutes / 5.0)) * 5


def _tail_name(start: str, k: int) -> str:
    """The k-th registration after `start` (e.g. CC-BGA, CC-BGB, ...), counting in base 26."""
    head, letters = start[:-3], start[-3:]
    n = 0
    for ch in letters:
        n = n * 26 + ord(ch) - 65
    n += k
    out = []
    for _ in range(3):
        n, r = divmod(n, 26)
        out.append(chr(65 + r))
    return head + "".join(reversed(out))


def _tail_pool(start: str, taken: set[str]) -> Iterator[str]:
    """Registrations from `start` on, skipping any another fleet already holds."""
    for k in count():
        name = _tail_name(start, k)
        if name not in taken:
            taken.add(name)
            yield name


@dataclass(frozen=True, slots=True)
class Slot:
    """One daily aircraft rotation: hub -> outstation at `dep_local_min`, then back."""

    carrier: str
    out_number: int
    ret_number: int
    hub: Airport
    outstation: Airport
    aircraft: AircraftType
    dep_local_min: int
    block_out_min: int
    block_ret_min: int
    turn_min: int
    tails: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Network:
    """Everything about the network that does not change from day to day."""

    airports: dict[str, Airport]
    slots: tuple[Slot, ...]

    @property
    def carriers(self) -> tuple[str, ...]:
        return tuple(sorted({s.carrier for s in self.slots}))


def _departure_times(rng: random.Random, freq: int, long_haul: bool) -> list[int]:
    """Local departure minutes of a route's daily frequencies: spread over the day, long-haul at night."""
    if long_haul:
        return [int(rng.uniform(20 * 60, 23 * 60 + 30)) // 5 * 5 for _ in range(freq)]
    first, last = 6 * 60, 21 * 60 + 30
    step = (last - first) / max(freq, 1)
    times = []
    for k in range(freq):
        t = first + step * (k + 0.5) + rng.uniform(-0.3, 0.3) * step
        times.append(int(t) // 5 * 5)
    return sorted(times)


@cache
def load_network() -> Network:
    """Build the network once per process from airportsdata and the route table."""
    db = airportsdata.load("IATA")
    codes = sorted({r[1] for r in ROUTES} | {r[2] for r in ROUTES})
    airports = {
        c: Airport(
            c, float(db[c]["lat"]), float(db[c]["lon"]), ZoneInfo(db[c]["tz"]), db[c]["country"]
        )
        for c in codes
    }
    taken: set[str] = set()
    pools: dict[tuple[str, str], Iterator[str]] = {}
    slots: list[Slot] = []
    for carrier, hub, out, ac, freq, number in ROUTES:
        rng = random.Random(f"{carrier}{number}{hub}{out}")
        a, b, aircraft = airports[hub], airports[out], AIRCRAFT[ac]
        block_out, block_ret = block_minutes(a, b), block_minutes(b, a)
        turn = WIDEBODY_TURN_MIN if aircraft.widebody else HUB_TURN_MIN
        cycle_min = block_out + block_ret + 2 * turn + 240  # with room for delays
        n_tails = math.ceil(cycle_min / 1440)
        for k, dep in enumerate(_departure_times(rng, freq, block_out > 6 * 60)):
            pool = pools.setdefault((carrier, ac), _tail_pool(TAIL_START[(carrier, ac)], taken))
            tails = tuple(next(pool) for _ in range(n_tails))
            slots.append(
                Slot(
                    carrier,
                    number + 2 * k,
                    number + 2 * k + 1,
                    a,
                    b,
                    aircraft,
                    dep,
                    block_out,
                    block_ret,
                    turn,
                    tails,
                )  # fmt: skip
            )
    return Network(airports, tuple(slots))
