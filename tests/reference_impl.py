"""A plain pandas reference of the curated and mart semantics, written from the contract's semantics (docs/transformations.md).

It deliberately shares no code with the SQL path: the correctness tests feed the same events to
both and require equal results. It is meant to be obviously right, not fast (thousands of events).

- Duplicates: one event per message_id (the first delivered), like the raw layer.
- Order: events sort by event_time, then message_id (compared as canonical lowercase UUID text,
  which orders like Postgres' uuid type).
- Flights: each field is the latest non-null value (`GroupBy.last` skips nulls); status is the
  latest event's. Delays are exact minutes rounded half away from zero to 2 decimals.
- Passengers count by their latest action on the flight.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import uuid
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

import airportsdata
import numpy as np
import pandas as pd

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


def _events_frame(events: list[dict], event_type: str) -> pd.DataFrame:
    """One row per distinct message of a type: envelope plus payload, sorted by event order."""
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


def fact_flight(events: list[dict]) -> pd.DataFrame:
    flights = _events_frame(events, "flight_status")
    if flights.empty:
        return pd.DataFrame()
    for col in FLIGHT_FIELDS:
        if col not in flights:
            flights[col] = None
    for col in TIME_FIELDS:
        flights[col] = flights[col].map(_ts)
    grouped = flights.groupby("flight_key", sort=True)
    latest_known = grouped[["destination", *FLIGHT_FIELDS]].last()  # skips nulls
    latest = grouped[["carrier", "flight_number", "flight_date", "origin", "status"]].nth(-1)
    latest = latest.set_index(flights.loc[latest.index, "flight_key"])
    times_of = grouped["event_time"].agg(["min", "max", "size"])
    airports = airportsdata.load("IATA")
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
    load_of = {r["flight_key"]: r for r in loads.to_dict("records")}
    groups: dict[tuple, list[dict]] = {}
    for f in flights.to_dict("records"):
        key = (f["flight_date"], f["carrier"], f["origin"], f["destination"])
        groups.setdefault(key, []).append(f)
    rows = []
    for (day, carrier, origin, dest), g in sorted(groups.items()):
        arrived = [f for f in g if f["arrived"]]
        arr_delays = [f["arr_delay_min"] for f in arrived if f["arr_delay_min"] is not None]
        on_time = sum(1 for f in g if f["on_time"] is True)
        loads_g = [load_of[f["flight_key"]] for f in g]
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
    reports = _events_frame(events, "position_report")
    if reports.empty:
        return pd.DataFrame()
    for col in POSITION_FIELDS:
        if col not in reports:
            reports[col] = None
    has_key = reports["flight_key"].notna()
    latest = reports.groupby("tail_number", sort=True).nth(-1).set_index("tail_number")
    with_key = reports[has_key].groupby("tail_number").nth(-1).set_index("tail_number")
    out = latest[[*POSITION_FIELDS, "event_time", "message_id", "source_system"]].copy()
    out["flight_key"] = with_key["flight_key"].reindex(out.index)
    return out.reset_index()


@dataclass
class Reference:
    """Every table the reference computes, from one list of events."""

    fact_flight: pd.DataFrame
    flight_passenger: pd.DataFrame
    flight_passenger_load: pd.DataFrame
    route_daily_performance: pd.DataFrame
    airport_daily_traffic: pd.DataFrame
    aircraft_position_latest: pd.DataFrame


def compute(events: list[dict], secret: str) -> Reference:
    flights = fact_flight(events)
    pax = flight_passenger(events, secret)
    loads = flight_passenger_load(flights, pax)
    return Reference(
        fact_flight=flights,
        flight_passenger=pax,
        flight_passenger_load=loads,
        route_daily_performance=route_daily_performance(flights, loads),
        airport_daily_traffic=airport_daily_traffic(flights),
        aircraft_position_latest=aircraft_position_latest(events),
    )
