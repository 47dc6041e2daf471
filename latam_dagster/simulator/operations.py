"""How each scheduled leg actually operates: delays, cancellations, diversions, aircraft rotation.

Legs are taken from the timetable in scheduled-departure order and decided once, when they enter
the booking horizon (72 h before departure). The aircraft of a rotation carries its lateness from
leg to leg, and an aircraft that is not where the next leg starts (cancelled or diverted earlier)
makes that leg cancelled too.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import count

from latam_dagster.simulator.network import AircraftType, Airport, Network, Slot

MINUTE = 60_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR
HORIZON = 72 * HOUR  # a leg enters the simulation (schedule published, bookings open) this early
CHECKIN_OPENS = 24 * HOUR
CHECKIN_CLOSES = 45 * MINUTE
BOARDING_STARTS = 35 * MINUTE
BOARDING_ENDS = 7 * MINUTE
CANCEL_RATE = 0.01  # plus the return legs of disrupted rotations: about 2% overall
DIVERT_RATE = 0.01


@dataclass(slots=True)
class Flight:
    """One operated leg with every time decided (epoch ms); the event streams read from it."""

    carrier: str
    number: int
    flight_date: str
    origin: Airport
    dest: Airport
    aircraft: AircraftType
    tail: str
    off_origin: int  # UTC offset (s) of the origin at scheduled departure
    off_dest: int
    sched_dep: int
    sched_arr: int
    spawn: int
    act_dep: int | None = None
    act_arr: int | None = None
    takeoff: int | None = None
    landing: int | None = None
    cancel_at: int | None = None
    divert_at: int | None = None
    passengers: int = 0
    salt: int = 0

    @property
    def ends(self) -> int:
        """When the last event of this leg happens."""
        last = self.cancel_at or self.divert_at or self.act_arr
        return last if last is not None else self.sched_arr


@dataclass(slots=True)
class _Leg:
    sched_dep: int
    sched_arr: int
    slot: Slot
    outbound: bool
    tail: str


def _utc_offset_s(ms: int, ap: Airport) -> int:
    local = datetime.fromtimestamp(ms / 1000, tz=ap.tz)
    return int(local.utcoffset().total_seconds())  # type: ignore[union-attr]


def _local_date(ms: int, ap: Airport) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=ap.tz).date().isoformat()


def dep_delay_min(rng: random.Random) -> float:
    """Departure delay in minutes: most legs near on time, some early, a long tail of late ones."""
    u = rng.random()
    if u < 0.12:
        return -rng.uniform(1.0, 8.0)
    if u < 0.68:
        return rng.uniform(0.0, 9.0)
    if u < 0.92:
        return 8.0 + rng.expovariate(1 / 14)
    return min(25.0 + rng.expovariate(1 / 55), 600.0)


class Operations:
    """Turns the timetable into operated flights, in order of scheduled departure."""

    def __init__(self, network: Network, rng: random.Random, start_ms: int):
        self.network = network
        self.rng = rng
        self.start = start_ms
        # tail -> (ready at, airport where it is)
        self.aircraft: dict[str, tuple[int, str]] = {}

    def _legs_of_day(self, day: date) -> Iterator[_Leg]:
        ordinal = day.toordinal()
        for slot in self.network.slots:
            tail = slot.tails[ordinal % len(slot.tails)]
            local = datetime(day.year, day.month, day.day, tzinfo=slot.hub.tz) + timedelta(
                minutes=slot.dep_local_min
            )
            dep = int(local.timestamp()) * 1000
            arr = dep + slot.block_out_min * MINUTE
            ret = -(-(arr + slot.turn_min * MINUTE) // (5 * MINUTE)) * 5 * MINUTE
            yield _Leg(dep, arr, slot, True, tail)
            yield _Leg(ret, ret + slot.block_ret_min * MINUTE, slot, False, tail)

    def flights(self) -> Iterator[tuple[int, Flight]]:
        """(spawn time, flight) forever, spawn times never decreasing."""
        first_day = datetime.fromtimestamp(self.start / 1000, tz=UTC).date()
        day = first_day - timedelta(days=1)
        pending: list[tuple[int, int, _Leg]] = []
        seq = count()
        loaded = day - timedelta(days=1)
        while True:
            # a leg of local day d departs no earlier than UTC midnight of d minus 14 h
            while (
                not pending
                or pending[0][0] >= _utc_midnight(loaded + timedelta(days=1)) - 14 * HOUR
            ):
                loaded += timedelta(days=1)
                for leg in self._legs_of_day(loaded):
                    heapq.heappush(pending, (leg.sched_dep, next(seq), leg))
            leg = heapq.heappop(pending)[2]
            flight = self._operate(leg)
            if flight.ends > self.start:
                yield flight.spawn, flight

    def _operate(self, leg: _Leg) -> Flight:
        rng, slot = self.rng, leg.slot
        origin, dest = (slot.hub, slot.outstation) if leg.outbound else (slot.outstation, slot.hub)
        number = slot.out_number if leg.outbound else slot.ret_number
        f = Flight(
            carrier=slot.carrier,
            number=number,
            flight_date=_local_date(leg.sched_dep, origin),
            origin=origin,
            dest=dest,
            aircraft=slot.aircraft,
            tail=leg.tail,
            off_origin=_utc_offset_s(leg.sched_dep, origin),
            off_dest=_utc_offset_s(leg.sched_arr, dest),
            sched_dep=leg.sched_dep,
            sched_arr=leg.sched_arr,
            spawn=max(leg.sched_dep - HORIZON, self.start),
            salt=rng.getrandbits(64),
        )
        seats = slot.aircraft.seats
        f.passengers = min(seats, int(seats * rng.triangular(0.55, 1.0, 0.86)))
        ready, where = self.aircraft.get(leg.tail, (0, origin.iata))
        if where != origin.iata or rng.random() < CANCEL_RATE:
            f.cancel_at = leg.sched_dep - int(rng.uniform(30, 300)) * MINUTE
            self.aircraft[leg.tail] = (f.cancel_at + 6 * HOUR, slot.hub.iata)
            return f
        delay = dep_delay_min(rng)
        dep = max(leg.sched_dep + int(delay * MINUTE), ready)
        f.act_dep = dep // MINUTE * MINUTE
        block = (leg.sched_arr - leg.sched_dep) * rng.gauss(0.96, 0.035)
        f.act_arr = (f.act_dep + max(int(block), 25 * MINUTE)) // MINUTE * MINUTE
        f.takeoff = f.act_dep + int(rng.uniform(8, 18) * MINUTE)
        f.landing = f.act_arr - int(rng.uniform(4, 10) * MINUTE)
        if rng.random() < DIVERT_RATE:
            f.divert_at = f.takeoff + int((f.landing - f.takeoff) * rng.uniform(0.35, 0.9))
            f.act_arr = None  # `landing` stays the planned one: the track heads there until then
            self.aircraft[leg.tail] = (f.divert_at + 8 * HOUR, slot.hub.iata)
            return f
        min_turn = (90 if slot.aircraft.widebody else 35) * MINUTE
        self.aircraft[leg.tail] = (f.act_arr + min_turn, dest.iata)
        return f


def _utc_midnight(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) * 1000


def coprime_step(rng: random.Random, n: int) -> int:
    """A multiplier coprime with n, so `(a*j + b) % n` visits every passenger once in shuffled order."""
    if n < 3:
        return 1
    while True:
        a = rng.randrange(1, n)
        if math.gcd(a, n) == 1:
            return a
