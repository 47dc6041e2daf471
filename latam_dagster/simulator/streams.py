"""The three event streams of one flight: status, passengers and positions.

Each stream is a generator of `(event time ms, routing key, event)` in time order; the world
merges the streams of all live flights. Events dated before the simulation start are not emitted,
except that a flight already under way gets one snapshot status event at the start, the way an
operations system publishes its current picture when a feed is connected.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from typing import Any

from latam_dagster.simulator.encoding import mix64, rfc3339, uuid4_text
from latam_dagster.simulator.network import CURRENCY_OF_COUNTRY, USD_RATE, great_circle_km
from latam_dagster.simulator.operations import (
    BOARDING_ENDS,
    BOARDING_STARTS,
    CHECKIN_CLOSES,
    CHECKIN_OPENS,
    HORIZON,
    HOUR,
    MINUTE,
    Flight,
    coprime_step,
)
from latam_dagster.simulator.systems import SourceSystems

Item = tuple[int, str, dict[str, Any]]
POSITION_PERIOD = 30_000
DEGREES = 180.0 / math.pi
FEED_HANDOVER = 40 * MINUTE  # an aircraft moves from one ADS-B feed's coverage to the next
CABIN_FARE = {"economy": 1.0, "premium_economy": 1.7, "business": 3.8}
# passenger fates, as fractions of 65536
P_CANCEL = int(0.035 * 65536)
P_CHECKIN = int(0.96 * 65536)
P_BOARD = int(0.985 * 65536)


class Streams:
    """Builds the event streams of flights; shares one RNG so the whole run follows the seed."""

    def __init__(self, rng: random.Random, systems: SourceSystems, start_ms: int):
        self.rng = rng
        self._bits = rng.getrandbits
        self.systems = systems
        self.start = start_ms

    def of(self, f: Flight) -> tuple[Iterator[Item], ...]:
        """The streams of one flight, to be merged by event time."""
        return self.status(f), self.passengers(f), self.positions(f)

    def _event(self, etype: str, t: int, offset_s: int, source: str, payload: dict) -> dict:
        return {
            "message_id": uuid4_text(self._bits(128)),
            "schema_version": 1,
            "event_type": etype,
            "event_time": rfc3339(t, offset_s),
            "source_system": source,
            "payload": payload,
        }

    # --- flight status -------------------------------------------------------------------------

    def _status_plan(self, f: Flight) -> list[tuple[int, str, str, dict[str, Any]]]:
        """(time, status, source, optional fields) of every status event of the flight."""
        rng, sys = self.rng, self.systems
        ops = sys.ops[f.salt % len(sys.ops)]
        dcs = sys.dcs_for(f.origin.iata, f.salt >> 4)
        o, d = f.off_origin, f.off_dest
        plan: list[tuple[int, str, str, dict[str, Any]]] = [
            (
                f.sched_dep - HORIZON,
                "scheduled",
                sys.ops[(f.salt >> 8) % len(sys.ops)],
                {
                    "scheduled_departure": rfc3339(f.sched_dep, o, False),
                    "scheduled_arrival": rfc3339(f.sched_arr, d, False),
                    "tail_number": f.tail,
                    "seat_capacity": f.aircraft.seats,
                },
            )
        ]
        first_move = f.cancel_at or (f.act_dep - BOARDING_STARTS)  # type: ignore[operator]
        if rng.random() < 0.35:  # the aircraft assignment is re-confirmed on the day
            at = first_move - int(rng.uniform(1.0, 20.0) * HOUR)
            if at > plan[0][0]:
                plan.append((at, "scheduled", ops, {"tail_number": f.tail}))
        if f.cancel_at is not None:
            extra = {"scheduled_departure": rfc3339(f.sched_dep, o, False)}
            plan.append((f.cancel_at, "cancelled", ops, extra if rng.random() < 0.5 else {}))
            return plan
        assert f.act_dep is not None
        dep = rfc3339(f.act_dep, o, False)
        plan.append(
            (
                f.act_dep - BOARDING_STARTS,
                "boarding",
                dcs,
                {"tail_number": f.tail} if rng.random() < 0.5 else {},
            )
        )
        departed: dict[str, Any] = {"actual_departure": dep}
        if rng.random() < 0.4:
            departed["scheduled_departure"] = rfc3339(f.sched_dep, o, False)
        if rng.random() < 0.3:
            departed["tail_number"] = f.tail
        plan.append((f.act_dep, "departed", ops, departed))
        if f.divert_at is not None:
            plan.append(
                (
                    f.divert_at,
                    "diverted",
                    ops,
                    {"actual_departure": dep} if rng.random() < 0.5 else {},
                )
            )
            return plan
        assert f.act_arr is not None
        arrived: dict[str, Any] = {"actual_arrival": rfc3339(f.act_arr, d, False)}
        if rng.random() < 0.4:
            arrived["actual_departure"] = dep
        if rng.random() < 0.3:
            arrived["scheduled_arrival"] = rfc3339(f.sched_arr, d, False)
        plan.append((f.act_arr, "arrived", ops, arrived))
        return plan

    def status(self, f: Flight) -> Iterator[Item]:
        """Status events; earlier history folds into one snapshot at the simulation start."""
        plan = self._status_plan(f)
        key = {
            "carrier": f.carrier,
            "flight_number": f.number,
            "flight_date": f.flight_date,
            "origin": f.origin.iata,
            "destination": f.dest.iata,
        }
        past = [p for p in plan if p[0] <= self.start]
        plan = plan[len(past) :]
        if past:
            fields: dict[str, Any] = {}
            for p in past:
                fields.update(p[3])
            limit = min(2 * MINUTE, plan[0][0] - self.start) if plan else 2 * MINUTE
            at = self.start + int(self.rng.random() * limit)
            plan.insert(0, (at, past[-1][1], past[-1][2], fields))
        for t, status, source, fields in plan:
            payload = {**key, "status": status, **fields}
            yield (
                t,
                "flight." + source,
                self._event("flight_status", t, f.off_origin, source, payload),
            )

    # --- passengers ----------------------------------------------------------------------------

    @staticmethod
    def _fare(f: Flight, km: float, h: int, cabin: str) -> tuple[float | int, str]:
        """A fare by distance and cabin, in the currency of where it was sold."""
        usd = (35.0 + 0.075 * km) * CABIN_FARE[cabin] * (0.55 + 1.3 * (h & 0xFFFF) / 65536)
        pick = (h >> 16) & 0xFF
        if pick < 150:
            currency = CURRENCY_OF_COUNTRY.get(f.origin.country, "USD")
        elif pick < 215:
            currency = "USD"
        else:
            currency = CURRENCY_OF_COUNTRY.get(f.dest.country, "USD")
        rate, decimals = USD_RATE[currency]
        amount = round(usd * rate, decimals)
        if amount > 999_999:  # big-ticket fares are sold in dollars
            currency, amount, decimals = "USD", round(usd, 2), 2
        return (int(amount) if decimals == 0 else amount), currency

    def passengers(self, f: Flight) -> Iterator[Item]:
        """Bookings, then check-ins and cancellations, then boarding, each in shuffled order.

        Per-passenger facts (reference, cabin, fare, whether they cancel, check in, board) come
        from a hash of the flight's salt and the passenger's index, so nothing per passenger is
        stored.
        """
        rng, start, n = self.rng, self.start, f.passengers
        if n == 0:
            return
        res, dcs = self.systems.res, self.systems.dcs_for(f.origin.iata, f.salt >> 4)
        key = {
            "carrier": f.carrier,
            "flight_number": f.number,
            "flight_date": f.flight_date,
            "origin": f.origin.iata,
        }
        km = great_circle_km(f.origin.lat, f.origin.lon, f.dest.lat, f.dest.lon)
        seats = f.aircraft.seats
        biz = f.aircraft.business * 65536 // seats
        prem = biz + f.aircraft.premium_economy * 65536 // seats
        o, salt = f.off_origin, f.salt

        def cabin_of(h: int) -> str:
            c = h >> 48
            return "business" if c < biz else "premium_economy" if c < prem else "economy"

        def emit(t: int, ref: str, action: str, source: str, extra: dict[str, Any]) -> Item:
            payload = {"passenger_ref": ref, **key, "action": action, **extra}
            off = 0 if source in res else o
            return t, "passenger." + source, self._event("passenger_event", t, off, source, payload)

        def times(t0: int, t1: int, k: int, stop: int | None = None) -> Iterator[int]:
            """k sorted uniform times in [t0, t1) drawn one at a time (order statistics)."""
            t = float(t0)
            for remaining in range(k, 0, -1):
                t += (t1 - t) * (1.0 - rng.random() ** (1.0 / remaining))
                if stop is not None and t >= stop:
                    return
                yield int(t)

        book_open, ci_open = f.sched_dep - HORIZON, f.sched_dep - CHECKIN_OPENS
        for idx, t in enumerate(times(book_open, ci_open, n)):
            if t < start:
                continue
            h = mix64(salt + idx)
            extra: dict[str, Any] = {}
            cabin = cabin_of(h)
            r = rng.random()
            if r < 0.9:
                extra["cabin"] = cabin
            if r < 0.85:
                extra["fare_amount"], extra["currency"] = self._fare(f, km, mix64(h), cabin)
            yield emit(t, f"PAX-{h:016x}", "booked", res[(h >> 20) % len(res)], extra)

        a, b = coprime_step(rng, n), rng.randrange(n)
        ci_close = f.sched_dep - CHECKIN_CLOSES
        for j, t in enumerate(times(ci_open, ci_close, n, f.cancel_at)):
            if t < start:
                continue
            idx = (a * j + b) % n
            h = mix64(salt + idx)
            if (h & 0xFFFF) < P_CANCEL:
                yield emit(t, f"PAX-{h:016x}", "cancelled", res[(h >> 20) % len(res)], {})
            elif ((h >> 16) & 0xFFFF) < P_CHECKIN:
                extra = {"cabin": cabin_of(h)} if rng.random() < 0.35 else {}
                yield emit(t, f"PAX-{h:016x}", "checked_in", dcs, extra)

        if f.act_dep is None:
            return
        a, b = coprime_step(rng, n), rng.randrange(n)
        board_from, board_to = f.act_dep - BOARDING_STARTS, f.act_dep - BOARDING_ENDS
        for j, t in enumerate(times(board_from, board_to, n)):
            if t < start:
                continue
            idx = (a * j + b) % n
            h = mix64(salt + idx)
            if (
                (h & 0xFFFF) >= P_CANCEL
                and ((h >> 16) & 0xFFFF) < P_CHECKIN
                and ((h >> 32) & 0xFFFF) < P_BOARD
            ):
                yield emit(t, f"PAX-{h:016x}", "boarded", dcs, {})

    # --- positions -----------------------------------------------------------------------------

    def positions(self, f: Flight) -> Iterator[Item]:
        """ADS-B reports every ~30 s along the great circle while the aircraft is airborne."""
        if f.takeoff is None:
            return
        rng, adsb = self.rng, self.systems.adsb
        t0, t_land = f.takeoff, f.landing
        assert t_land is not None
        t_end = f.divert_at if f.divert_at is not None else t_land
        span = t_land - t0
        lat1, lon1 = math.radians(f.origin.lat), math.radians(f.origin.lon)
        lat2, lon2 = math.radians(f.dest.lat), math.radians(f.dest.lon)
        ax, ay, az = _unit(lat1, lon1)
        bx, by, bz = _unit(lat2, lon2)
        omega = math.acos(max(-1.0, min(1.0, ax * bx + ay * by + az * bz)))
        sin_omega = math.sin(omega) or 1.0
        cruise_ft = f.aircraft.cruise_ft - 2000 * (f.salt % 3)
        cruise_kt = f.aircraft.cruise_kt
        feed0 = f.salt >> 20
        key = {
            "carrier": f.carrier,
            "flight_number": f.number,
            "flight_date": f.flight_date,
            "origin": f.origin.iata,
        }
        k = 1 if self.start <= t0 else (self.start - t0) // POSITION_PERIOD + 1
        sin, cos, atan2, hypot, rand = math.sin, math.cos, math.atan2, math.hypot, rng.random
        event, tail, n_feeds = self._event, f.tail, len(adsb)
        while True:
            t = t0 + k * POSITION_PERIOD + int(rand() * 2000)
            k += 1
            if t >= t_end:
                return
            frac = (t - t0) / span
            a1, a2 = (1.0 - frac) * omega, frac * omega
            s1, s2 = sin(a1) / sin_omega, sin(a2) / sin_omega
            x, y, z = s1 * ax + s2 * bx, s1 * ay + s2 * by, s1 * az + s2 * bz
            rho = hypot(x, y)
            payload: dict[str, Any] = {
                "tail_number": tail,
                "latitude": round(atan2(z, rho) * DEGREES, 5),
                "longitude": round(atan2(y, x) * DEGREES, 5),
            }
            alt = min(cruise_ft, (t - t0) * 2200 // MINUTE, (t_land - t) * 1800 // MINUTE)
            alt = max(0, alt // 25 * 25)
            r = rand()  # some receivers report no altitude, others no velocity
            if r >= 0.03:
                payload["altitude_ft"] = alt
            if r >= 0.08 or r < 0.03:
                gs = 170 + (cruise_kt - 170) * alt / cruise_ft + (rand() - 0.5) * 30
                payload["ground_speed_kt"] = round(max(gs, 0.0))
                # track = direction of motion along the great circle, in local east/north
                c1, c2 = -cos(a1), cos(a2)
                vx, vy, vz = c1 * ax + c2 * bx, c1 * ay + c2 * by, c1 * az + c2 * bz
                cos_lon, sin_lon = x / rho, y / rho
                east = cos_lon * vy - sin_lon * vx
                north = rho * vz - z * (cos_lon * vx + sin_lon * vy)
                heading = round(atan2(east, north) * DEGREES % 360.0, 1)
                payload["heading_deg"] = heading if heading < 360.0 else 0.0
            payload.update(key)
            source = adsb[(feed0 + (t - t0) // FEED_HANDOVER) % n_feeds]
            yield t, "position." + source, event("position_report", t, 0, source, payload)


def _unit(lat: float, lon: float) -> tuple[float, float, float]:
    c = math.cos(lat)
    return c * math.cos(lon), c * math.sin(lon), math.sin(lat)
