"""A plain pandas reference of the curated and mart semantics, written from the contract's semantics (docs/transformations.md).

It deliberately shares no code with the SQL path (only the limits of `tables/limits.py`): the
correctness tests feed the same events to both and require equal results. It is meant to be
obviously right, not fast (thousands of events).

- Duplicates: one event per message_id (the first delivered), like the raw layer.
- Order: events sort by event_time, then message_id (compared as canonical lowercase UUID text,
  which orders like Postgres' uuid type).
- Flights: each field is the latest non-null value (`GroupBy.last` skips nulls); status is the
  latest event's. Delays are exact minutes rounded half away from zero to 2 decimals.
- Passengers count by their latest action on the flight.
- Write-audit-publish: the computed frames are what `staging.*` holds. Each row rule of an audited
  table is evaluated here on its own, with Great Expectations' semantics (a missing value passes a
  value check; a pair with a missing value passes); rows breaking a rule that holds back are left
  out of the published frames (`curated.*`) and listed in `rejects`. The marts read the published
  frames only: a held-back flight is absent, a held-back load leaves its flight counted without
  its passengers or load factor.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

import airportsdata
import numpy as np
import pandas as pd

from latam_dagster.contracts.validator import FLIGHT_STATUSES
from latam_dagster.tables.limits import (
    AIRPORT_CODE,
    ALTITUDE_MAX_FT,
    ALTITUDE_MIN_FT,
    CARRIER_CODE,
    DELAY_MAX,
    DELAY_MIN,
    MAX_DISTANCE_KM,
    MAX_GROUND_SPEED_KT,
    MAX_LOAD_FACTOR,
    MAX_SEATS,
)

EARTH_RADIUS_KM = 6371.0088
FLIGHT_FIELDS = (
    "scheduled_departure",
    "scheduled_arrival",
    "actual_departure",
    "actual_arrival",
    "tail_number",
    "seat_capacity",
)
TIME_FIELDS = FLIGHT_FIELDS[:4]
POSITION_FIELDS = ("latitude", "longitude", "altitude_ft", "ground_speed_kt", "heading_deg")


def dec(value: Decimal | float | int, places: int) -> Decimal:
    """Round half away from zero, like Postgres' round(numeric, n)."""
    return Decimal(value).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def flight_key(p: dict) -> str:
    return f"{p['carrier']}{p['flight_number']}-{p['flight_date']}-{p['origin']}"


def _ts(value) -> pd.Timestamp | None:
    return None if value is None else pd.Timestamp(value).tz_convert("UTC")


def _events_frame(
    events: list[dict], event_type: str, fields: tuple[str, ...] = ()
) -> pd.DataFrame:
    """One row per distinct message of a type: envelope plus payload, sorted by event order;
    every payload field of `fields` is a column, None where no event had it."""
    rows, seen = [], set()
    for e in events:
        mid = str(uuid.UUID(e["message_id"]))
        if e["event_type"] != event_type or mid in seen:
            continue
        seen.add(mid)
        p = e["payload"]
        parts = (p.get("carrier"), p.get("flight_number"), p.get("flight_date"), p.get("origin"))
        rows.append(
            {
                **p,
                "flight_key": None if None in parts else flight_key(p),
                "message_id": mid,
                "event_time": _ts(e["event_time"]),
                "source_system": e["source_system"],
            }
        )
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    for col in fields:
        if col not in frame:
            frame[col] = None
    return frame.sort_values(["event_time", "message_id"], kind="stable").reset_index(drop=True)


def delay_minutes(actual: pd.Timestamp | None, scheduled: pd.Timestamp | None) -> Decimal | None:
    if actual is None or scheduled is None or pd.isna(actual) or pd.isna(scheduled):
        return None
    micros = (actual - scheduled) // pd.Timedelta(microseconds=1)
    return dec(Decimal(micros) / Decimal(60_000_000), 2)


def great_circle_km(a: dict | None, b: dict | None) -> float | None:
    if a is None or b is None:
        return None
    la1, lo1, la2, lo2 = map(math.radians, (a["lat"], a["lon"], b["lat"], b["lon"]))
    h = (
        math.sin((la2 - la1) / 2) ** 2
        + math.cos(la1) * math.cos(la2) * math.sin((lo2 - lo1) / 2) ** 2
    )
    return round(2 * EARTH_RADIUS_KM * math.asin(math.sqrt(h)), 1)


def _none(value):
    """pandas' missing markers (NaN, NaT, None) as None."""
    if value is None:
        return None
    try:
        return None if pd.isna(value) else value
    except (TypeError, ValueError):
        return value


def iata_airports() -> dict[str, dict]:
    """Every airport `load_dim_airport` loads into curated.dim_airport, by IATA code."""
    return airportsdata.load("IATA")


def fact_flight(events: list[dict], airports: Mapping[str, dict] | None = None) -> pd.DataFrame:
    """The computed flights; `airports` is curated.dim_airport (default: every IATA airport)."""
    airports = iata_airports() if airports is None else airports
    flights = _events_frame(events, "flight_status", FLIGHT_FIELDS)
    if flights.empty:
        return pd.DataFrame()
    for col in TIME_FIELDS:
        flights[col] = flights[col].map(_ts)
    grouped = flights.groupby("flight_key", sort=True)
    latest_known = grouped[["destination", *FLIGHT_FIELDS]].last()  # skips nulls
    latest = grouped[["carrier", "flight_number", "flight_date", "origin", "status"]].nth(-1)
    latest = latest.set_index(flights.loc[latest.index, "flight_key"])
    times_of = grouped["event_time"].agg(["min", "max", "size"])
    rows = []
    for key, known in latest_known.iterrows():
        last = latest.loc[key]
        first_time, last_time, count = times_of.loc[key]
        times = {c: _none(known[c]) for c in TIME_FIELDS}
        dep = delay_minutes(times["actual_departure"], times["scheduled_departure"])
        arr = delay_minutes(times["actual_arrival"], times["scheduled_arrival"])
        status = last["status"]
        seats = _none(known["seat_capacity"])
        rows.append(
            {
                "flight_key": key,
                "carrier": last["carrier"],
                "flight_number": int(last["flight_number"]),
                "flight_date": pd.Timestamp(last["flight_date"]).date(),
                "origin": last["origin"],
                "destination": known["destination"],
                "status": status,
                **times,
                "dep_delay_min": dep,
                "arr_delay_min": arr,
                "cancelled": status == "cancelled",
                "diverted": status == "diverted",
                "arrived": status == "arrived",
                "on_time": (arr < 15 if arr is not None else None)
                if status == "arrived"
                else False,
                "tail_number": _none(known["tail_number"]),
                "seat_capacity": None if seats is None else int(seats),
                "distance_km": great_circle_km(
                    airports.get(last["origin"]), airports.get(known["destination"])
                ),
                "first_event_time": first_time,
                "last_event_time": last_time,
                "event_count": int(count),
            }
        )
    return pd.DataFrame(rows)


def passenger_hash(passenger_ref: str, secret: str) -> str:
    return hmac.new(secret.encode(), passenger_ref.encode(), hashlib.sha256).hexdigest()


def flight_passenger(events: list[dict], secret: str) -> pd.DataFrame:
    pax = _events_frame(events, "passenger_event")
    if pax.empty:
        return pd.DataFrame()
    for col in ("cabin", "fare_amount", "currency"):
        if col not in pax:
            pax[col] = None
    grouped = pax.groupby(["flight_key", "passenger_ref"], sort=True)
    action = grouped["action"].nth(-1)
    action.index = pd.MultiIndex.from_frame(pax.loc[action.index, ["flight_key", "passenger_ref"]])
    known = grouped[["cabin", "fare_amount", "currency"]].last()
    out = known.join(action).reset_index()
    out["passenger_hash"] = out["passenger_ref"].map(lambda r: passenger_hash(r, secret))
    out["event_count"] = grouped.size().values
    return out.drop(columns=["passenger_ref"])


def flight_passenger_load(flights: pd.DataFrame, pax: pd.DataFrame) -> pd.DataFrame:
    """Counts per flight from `flight_passenger`, seat capacity from `fact_flight`."""
    flight_rows = [] if flights.empty else flights.to_dict("records")
    pax_rows = [] if pax.empty else pax.to_dict("records")
    seats = {f["flight_key"]: _none(f["seat_capacity"]) for f in flight_rows}
    counts: dict[str, dict[str, int]] = {}
    for key in [*seats, *(p["flight_key"] for p in pax_rows)]:
        counts.setdefault(key, dict.fromkeys(("booked", "checked_in", "boarded", "cancelled"), 0))
    for p in pax_rows:
        c, action = counts[p["flight_key"]], p["action"]
        c["booked"] += action in ("booked", "checked_in", "boarded")
        c["checked_in"] += action in ("checked_in", "boarded")
        c["boarded"] += action == "boarded"
        c["cancelled"] += action == "cancelled"
    rows = []
    for key in sorted(counts):
        c, cap = counts[key], seats.get(key)
        rows.append(
            {
                "flight_key": key,
                **{f"passengers_{k}": v for k, v in c.items()},
                "seat_capacity": None if cap is None else int(cap),
                "load_factor": dec(Decimal(c["boarded"]) / int(cap), 4) if cap else None,
            }
        )
    return pd.DataFrame(rows)


def _mean(values: list[Decimal], places: int) -> Decimal | None:
    values = [v for v in values if v is not None]
    return dec(sum(values, Decimal(0)) / len(values), places) if values else None


def route_daily_performance(flights: pd.DataFrame, loads: pd.DataFrame) -> pd.DataFrame:
    load_of = {r["flight_key"]: r for r in loads.to_dict("records")} if not loads.empty else {}
    groups: dict[tuple, list[dict]] = {}
    for f in flights.to_dict("records"):
        key = (f["flight_date"], f["carrier"], f["origin"], f["destination"])
        groups.setdefault(key, []).append(f)
    rows = []
    for (day, carrier, origin, dest), g in sorted(groups.items()):
        arrived = [f for f in g if f["arrived"]]
        arr_delays = [f["arr_delay_min"] for f in arrived if f["arr_delay_min"] is not None]
        on_time = sum(1 for f in g if f["on_time"] is True)
        # a flight whose load is held back counts, without its passengers or load factor
        loads_g = [load_of[f["flight_key"]] for f in g if f["flight_key"] in load_of]
        p90 = np.percentile([float(d) for d in arr_delays], 90) if arr_delays else None
        rows.append(
            {
                "flight_date": day,
                "carrier": carrier,
                "origin": origin,
                "destination": dest,
                "flights": len(g),
                "cancelled": sum(f["cancelled"] for f in g),
                "diverted": sum(f["diverted"] for f in g),
                "arrived": len(arrived),
                "on_time_arrivals": on_time,
                "on_time_pct": dec(Decimal(100 * on_time) / len(arrived), 2) if arrived else None,
                "avg_dep_delay_min": _mean([f["dep_delay_min"] for f in g], 2),
                "avg_arr_delay_min": _mean(arr_delays, 2),
                "p90_arr_delay_min": None if p90 is None else dec(Decimal(float(p90)), 2),
                "passengers_boarded": sum(r["passengers_boarded"] for r in loads_g),
                "avg_load_factor": _mean([_none(r["load_factor"]) for r in loads_g], 4),
            }
        )
    return pd.DataFrame(rows)


def airport_daily_traffic(flights: pd.DataFrame) -> pd.DataFrame:
    out: dict[tuple, dict] = {}

    def row(day, airport) -> dict:
        return out.setdefault(
            (day, airport),
            {"departures": 0, "arrivals": 0, "cancelled": set(), "dep": [], "arr": []},
        )

    for f in flights.to_dict("records"):
        dep, arr = row(f["flight_date"], f["origin"]), row(f["flight_date"], f["destination"])
        if f["cancelled"]:
            dep["cancelled"].add(f["flight_key"])
            arr["cancelled"].add(f["flight_key"])
            continue
        dep["departures"] += 1
        dep["dep"].append(f["dep_delay_min"])
        if not f["diverted"]:
            arr["arrivals"] += 1
            arr["arr"].append(f["arr_delay_min"])
    return pd.DataFrame(
        [
            {
                "flight_date": day,
                "airport": airport,
                "departures": r["departures"],
                "arrivals": r["arrivals"],
                "cancelled": len(r["cancelled"]),
                "avg_dep_delay_min": _mean(r["dep"], 2),
                "avg_arr_delay_min": _mean(r["arr"], 2),
            }
            for (day, airport), r in sorted(out.items())
        ]
    )


def aircraft_position_latest(events: list[dict]) -> pd.DataFrame:
    reports = _events_frame(events, "position_report", POSITION_FIELDS)
    if reports.empty:
        return pd.DataFrame()
    has_key = reports["flight_key"].notna()
    latest = reports.groupby("tail_number", sort=True).nth(-1).set_index("tail_number")
    with_key = reports[has_key].groupby("tail_number").nth(-1).set_index("tail_number")
    out = latest[[*POSITION_FIELDS, "event_time", "message_id", "source_system"]].copy()
    out["flight_key"] = with_key["flight_key"].reindex(out.index)
    return out.reset_index()


# -- write-audit-publish: the row rules, evaluated in pandas ------------------------------------

FACT_FLIGHT = "curated.fact_flight"
PASSENGER_LOAD = "curated.flight_passenger_load"
POSITION_LATEST = "curated.aircraft_position_latest"
ROW_RULES: dict[str, dict[str, bool]] = {
    FACT_FLIGHT: {
        "flight_codes_valid": True,
        "flight_airports_known": True,
        "flight_schedule_ordered": True,
        "flight_delays_plausible": True,
        "flight_seat_capacity_valid": True,
        "flight_route_plausible": False,
    },
    PASSENGER_LOAD: {
        "load_counts_valid": True,
        "load_factor_plausible": True,
        "load_flight_known": False,
    },
    POSITION_LATEST: {
        "position_coordinates_in_range": True,
        "position_motion_plausible": False,
    },
}
"""The row rules of each audited table, and whether a row breaking one is held back."""
KEYS = {FACT_FLIGHT: "flight_key", PASSENGER_LOAD: "flight_key", POSITION_LATEST: "tail_number"}


def _breaks(values: pd.Series, test: Callable[[object], bool]) -> pd.Series:
    """Rows whose value fails `test`; a missing value passes, as in GX's column map checks."""
    out = [v is not None and bool(test(v)) for v in map(_none, values)]
    return pd.Series(out, index=values.index, dtype=bool)


def outside(values: pd.Series, low, high, strict_max: bool = False) -> pd.Series:
    """ExpectColumnValuesToBeBetween: a bound of None is open."""

    def bad(v) -> bool:
        too_high = high is not None and (v >= high if strict_max else v > high)
        return (low is not None and v < low) or too_high

    return _breaks(values, bad)


def mismatches(values: pd.Series, regex: str) -> pd.Series:
    """ExpectColumnValuesToMatchRegex as Postgres reads the pattern: its `$` ends the text only,
    where Python's also matches before a final newline."""
    pattern = re.compile(regex[:-1] + r"\Z" if regex.endswith("$") else regex)
    return _breaks(values, lambda v: pattern.search(v) is None)


def not_in(values: pd.Series, allowed: Collection) -> pd.Series:
    """ExpectColumnValuesToBeInSet / ...InReferenceTable."""
    allowed = set(allowed)
    return _breaks(values, lambda v: v not in allowed)


def not_greater(a: pd.Series, b: pd.Series, or_equal: bool = False) -> pd.Series:
    """ExpectColumnPairValuesAToBeGreaterThanB: a pair with a missing value passes (skipped with
    ignore_row_if="either_value_is_missing"; otherwise SQL's comparison is unknown, not false)."""
    out = []
    for x, y in zip(map(_none, a), map(_none, b), strict=True):
        out.append(x is not None and y is not None and not (x >= y if or_equal else x > y))
    return pd.Series(out, index=a.index, dtype=bool)


def fact_flight_breaks(f: pd.DataFrame, airports: Collection[str]) -> dict[str, pd.Series]:
    """Rows of computed flights breaking each row rule; `airports`: curated.dim_airport's codes."""
    return {
        "flight_codes_valid": mismatches(f["carrier"], CARRIER_CODE)
        | outside(f["flight_number"], 1, 9999)
        | mismatches(f["origin"], AIRPORT_CODE)
        | mismatches(f["destination"], AIRPORT_CODE)
        | not_in(f["status"], FLIGHT_STATUSES),
        "flight_airports_known": not_in(f["origin"], airports) | not_in(f["destination"], airports),
        "flight_schedule_ordered": not_greater(f["scheduled_arrival"], f["scheduled_departure"])
        | not_greater(f["actual_arrival"], f["actual_departure"]),
        "flight_delays_plausible": outside(f["dep_delay_min"], DELAY_MIN, DELAY_MAX)
        | outside(f["arr_delay_min"], DELAY_MIN, DELAY_MAX),
        "flight_seat_capacity_valid": outside(f["seat_capacity"], 0, MAX_SEATS),
        "flight_route_plausible": (f["origin"] == f["destination"]).astype(bool)
        | outside(f["distance_km"], 0, MAX_DISTANCE_KM),
    }


def flight_passenger_load_breaks(
    loads: pd.DataFrame, flight_keys: Collection[str]
) -> dict[str, pd.Series]:
    """Rows of computed loads breaking each row rule; `flight_keys`: the computed flights'."""
    return {
        "load_counts_valid": outside(loads["passengers_booked"], 0, None)
        | outside(loads["passengers_cancelled"], 0, None)
        | not_greater(loads["passengers_booked"], loads["passengers_checked_in"], or_equal=True)
        | not_greater(loads["passengers_checked_in"], loads["passengers_boarded"], or_equal=True)
        | outside(loads["passengers_boarded"], 0, None),
        "load_factor_plausible": outside(loads["load_factor"], 0, MAX_LOAD_FACTOR)
        | outside(loads["seat_capacity"], 0, MAX_SEATS),
        "load_flight_known": not_in(loads["flight_key"], flight_keys),
    }


def aircraft_position_latest_breaks(p: pd.DataFrame) -> dict[str, pd.Series]:
    """Rows of computed latest positions breaking each row rule."""
    return {
        "position_coordinates_in_range": outside(p["latitude"], -90, 90)
        | outside(p["longitude"], -180, 180)
        | outside(p["heading_deg"], 0, 360, strict_max=True),
        "position_motion_plausible": outside(p["ground_speed_kt"], 0, MAX_GROUND_SPEED_KT)
        | outside(p["altitude_ft"], ALTITUDE_MIN_FT, ALTITUDE_MAX_FT),
    }


@dataclass
class Audit:
    """The reference's verdict on one computed table: what is published, what is held back.

    `rejects` and `warnings` hold (table, key, rule): rows breaking a rule that holds back, and
    rows breaking a non-blocking row rule (published all the same).
    """

    published: pd.DataFrame
    rejects: set[tuple[str, str, str]] = field(default_factory=set)
    warnings: set[tuple[str, str, str]] = field(default_factory=set)


def audit(table: str, frame: pd.DataFrame, breaks: Callable[[pd.DataFrame], dict]) -> Audit:
    """Apply the table's row rules to a computed frame (or to a table read from staging)."""
    if frame.empty:
        return Audit(frame)
    found = breaks(frame)
    assert set(found) == set(ROW_RULES[table]), f"{table}: rules {sorted(found)}"
    held = pd.Series(False, index=frame.index)
    result = Audit(frame)
    for rule, mask in found.items():
        keys = {(table, str(k), rule) for k in frame.loc[mask, KEYS[table]]}
        if ROW_RULES[table][rule]:
            held |= mask
            result.rejects |= keys
        else:
            result.warnings |= keys
    result.published = frame[~held].reset_index(drop=True)
    return result


def audit_fact_flight(flights: pd.DataFrame, airports: Collection[str]) -> Audit:
    return audit(FACT_FLIGHT, flights, lambda f: fact_flight_breaks(f, airports))


def audit_flight_passenger_load(loads: pd.DataFrame, flight_keys: Collection[str]) -> Audit:
    return audit(PASSENGER_LOAD, loads, lambda f: flight_passenger_load_breaks(f, flight_keys))


def audit_aircraft_position_latest(positions: pd.DataFrame) -> Audit:
    return audit(POSITION_LATEST, positions, aircraft_position_latest_breaks)


@dataclass
class Reference:
    """Every table the reference computes, from one list of events.

    `fact_flight`, `flight_passenger_load` and `aircraft_position_latest` are the computed rows
    (staging.*); `published_*` the rows that pass their row rules (curated.*); `rejects` the rows
    held back, as (table, key, rule). The marts are computed from the published frames.
    """

    fact_flight: pd.DataFrame
    flight_passenger: pd.DataFrame
    flight_passenger_load: pd.DataFrame
    aircraft_position_latest: pd.DataFrame
    published_fact_flight: pd.DataFrame
    published_flight_passenger_load: pd.DataFrame
    published_aircraft_position_latest: pd.DataFrame
    rejects: set[tuple[str, str, str]]
    warnings: set[tuple[str, str, str]]
    route_daily_performance: pd.DataFrame
    airport_daily_traffic: pd.DataFrame

    def held(self, table: str, rule: str | None = None) -> set[str]:
        """Keys of `table` held back (by `rule`, or by any)."""
        return {k for t, k, r in self.rejects if t == table and rule in (None, r)}


def compute(
    events: list[dict], secret: str, airports: Mapping[str, dict] | None = None
) -> Reference:
    """`airports` is what curated.dim_airport holds (default: every IATA airport; {} when empty)."""
    airports = iata_airports() if airports is None else airports
    flights = fact_flight(events, airports)
    pax = flight_passenger(events, secret)
    loads = flight_passenger_load(flights, pax)
    positions = aircraft_position_latest(events)
    flight_keys = set() if flights.empty else set(flights["flight_key"])
    audits = [
        audit_fact_flight(flights, set(airports)),
        audit_flight_passenger_load(loads, flight_keys),
        audit_aircraft_position_latest(positions),
    ]
    published_flights, published_loads, published_positions = (a.published for a in audits)
    return Reference(
        fact_flight=flights,
        flight_passenger=pax,
        flight_passenger_load=loads,
        aircraft_position_latest=positions,
        published_fact_flight=published_flights,
        published_flight_passenger_load=published_loads,
        published_aircraft_position_latest=published_positions,
        rejects=set().union(*(a.rejects for a in audits)),
        warnings=set().union(*(a.warnings for a in audits)),
        route_daily_performance=route_daily_performance(published_flights, published_loads),
        airport_daily_traffic=airport_daily_traffic(published_flights),
    )
