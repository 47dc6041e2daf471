"""A small warehouse for the API tests, written straight into the tables the API reads.

Three flight dates, five airports and three carriers give 42 flights in every state a flight can
be in, with their status events (curated.flight_event_history is a view over raw.flight_events),
passenger loads, the latest position of each aircraft, both daily marts (aggregated from these
flights by the reference implementation of the mart semantics, `tests/reference_impl.py`), the
airports, and a quality history of three validations with a small Data Docs site. Every value follows from fixed rules, so each session
writes the same rows, and tests compute what the API must answer from `ApiDataset` itself.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
from psycopg2.extras import Json

from latam_dagster.db import connection
from latam_dagster.transform.sqlfiles import load_sql
from tests import reference_impl

Row = dict[str, Any]

DATES = (dt.date(2026, 11, 26), dt.date(2026, 11, 27), dt.date(2026, 11, 28))
REFRESHED_AT = dt.datetime(2026, 11, 29, 4, 0, tzinfo=dt.UTC)
# names the dataset's message and validation ids (uuid5), so they are the same every session
NAMESPACE = uuid.UUID("6f1d8a52-4f0e-4c53-9a55-2a3f3c2d7e10")

AIRPORTS: tuple[Row, ...] = tuple(
    dict(zip(("iata", "icao", "name", "city", "subdivision", "country", "latitude", "longitude",
              "elevation_ft", "time_zone"), values, strict=True))
    for values in (
        ("SCL", "SCEL", "Aeropuerto Internacional Arturo Merino Benítez", "Santiago",
         "Región Metropolitana", "CL", -33.393, -70.7858, 1555, "America/Santiago"),
        ("LIM", "SPJC", "Aeropuerto Internacional Jorge Chávez", "Lima", "Callao", "PE",
         -12.0219, -77.1143, 113, "America/Lima"),
        ("GRU", "SBGR", "Aeroporto Internacional de São Paulo/Guarulhos", "São Paulo",
         "São Paulo", "BR", -23.4356, -46.4731, 2459, "America/Sao_Paulo"),
        ("BOG", "SKBO", "Aeropuerto Internacional El Dorado", "Bogotá", "Bogotá D.C.", "CO",
         4.7016, -74.1469, 8361, "America/Bogota"),
        ("MIA", "KMIA", "Miami International Airport", "Miami", "Florida", "US",
         25.7932, -80.2906, 8, None),
    )
)  # fmt: skip

# (carrier, flight number, origin, destination, distance km, departure hour UTC); SCL-LIM and
# LIM-BOG fly twice a day, so their route rows aggregate two flights
LEGS = (
    ("LA", 800, "SCL", "LIM", "2456.3", 11),
    ("LA", 804, "SCL", "LIM", "2456.3", 19),
    ("LA", 801, "LIM", "SCL", "2456.3", 15),
    ("LA", 750, "SCL", "GRU", "2597.8", 12),
    ("JJ", 751, "GRU", "SCL", "2597.8", 17),
    ("JJ", 3450, "GRU", "LIM", "3460.4", 14),
    ("LA", 2370, "LIM", "GRU", "3460.4", 9),
    ("LP", 2410, "LIM", "BOG", "1880.2", 13),
    ("LP", 2412, "LIM", "BOG", "1880.2", 21),
    ("LA", 2420, "BOG", "MIA", "2429.9", 16),
    ("LA", 2421, "MIA", "BOG", "2429.9", 20),
    ("JJ", 8064, "GRU", "MIA", "6555.1", 3),
    ("LA", 533, "SCL", "MIA", "6643.5", 1),
    ("LA", 500, "MIA", "SCL", "6643.5", 23),
)
FLEET = {"CC-BGA": 174, "CC-BGB": 174, "CC-BGC": 174, "PR-XTA": 220, "PR-XTB": 220, "CC-BHD": 300}
# (final status, departure delay, arrival delay) in minutes; a flight's outcome is picked by its
# position, so every date holds every kind
OUTCOMES = (
    ("arrived", 3, -2),
    ("arrived", 25, 31),
    ("departed", 12, None),
    ("arrived", 0, 9),
    ("boarding", None, None),
    ("cancelled", None, None),
    ("arrived", 48, 55),
    ("scheduled", None, None),
    ("diverted", 20, None),
    ("arrived", 7, 16),
)
STEPS = {
    "scheduled": ("scheduled",),
    "boarding": ("scheduled", "boarding"),
    "departed": ("scheduled", "boarding", "departed"),
    "arrived": ("scheduled", "boarding", "departed", "arrived"),
    "cancelled": ("scheduled", "cancelled"),
    "diverted": ("scheduled", "boarding", "departed", "diverted"),
}


@dataclass
class ApiDataset:
    """The rows written to each table, as Python values (what psycopg2 reads back)."""

    airports: list[Row] = field(default_factory=list)
    flights: list[Row] = field(default_factory=list)
    loads: list[Row] = field(default_factory=list)
    events: list[Row] = field(default_factory=list)
    positions: list[Row] = field(default_factory=list)
    routes: list[Row] = field(default_factory=list)
    traffic: list[Row] = field(default_factory=list)
    validations: list[Row] = field(default_factory=list)
    evaluations: list[Row] = field(default_factory=list)

    def row_counts(self) -> dict[str, int]:
        """Rows of each table (or view) the API serves from."""
        return {
            "curated.fact_flight": len(self.flights),
            "curated.flight_passenger_load": len(self.loads),
            "curated.flight_event_history": len(self.events),
            "curated.dim_airport": len(self.airports),
            "curated.aircraft_position_latest": len(self.positions),
            "marts.route_daily_performance": len(self.routes),
            "marts.airport_daily_traffic": len(self.traffic),
        }


def _minutes(value: int | None) -> Decimal | None:
    return None if value is None else reference_impl.dec(value, 2)


def build_dataset() -> ApiDataset:
    data = ApiDataset(airports=[dict(a) for a in AIRPORTS])
    tails = list(FLEET)
    for d, day in enumerate(DATES):
        for n, leg in enumerate(LEGS):
            position = d * len(LEGS) + n
            outcome = OUTCOMES[(n + 3 * d) % len(OUTCOMES)]
            tail = tails[position % len(tails)] if outcome[0] != "cancelled" else None
            _add_flight(data, day, leg, outcome, tail, position)
    _add_positions(data)
    _add_marts(data)
    _add_quality(data)
    return data


def _add_flight(
    data: ApiDataset, day: dt.date, leg: tuple, outcome: tuple, tail: str | None, i: int
) -> None:
    carrier, number, origin, destination, distance, hour = leg
    status, dep_delay, arr_delay = outcome
    key = f"{carrier}{number}-{day.isoformat()}-{origin}"
    sched_dep = dt.datetime(day.year, day.month, day.day, hour, tzinfo=dt.UTC)
    sched_arr = sched_dep + dt.timedelta(minutes=round(float(distance) / 13.5) + 25)
    actual_dep = sched_dep + dt.timedelta(minutes=dep_delay) if dep_delay is not None else None
    actual_arr = sched_arr + dt.timedelta(minutes=arr_delay) if arr_delay is not None else None
    seats = FLEET.get(tail) if tail else None
    times = {
        "scheduled": sched_dep - dt.timedelta(hours=20),
        "boarding": sched_dep - dt.timedelta(minutes=40),
        "departed": actual_dep,
        "arrived": actual_arr,
        "cancelled": sched_dep - dt.timedelta(hours=3),
        "diverted": actual_dep + dt.timedelta(minutes=95) if actual_dep else None,
    }
    steps = STEPS[status]
    for seq, step in enumerate(steps, start=1):
        flown = step in ("departed", "arrived", "diverted")
        data.events.append(
            {
                "flight_key": key,
                "event_seq": seq,
                "event_time": times[step],
                "message_id": str(uuid.uuid5(NAMESPACE, f"{key}/{step}")),
                "source_system": "ops_control" if seq % 2 else "airport_ops",
                "carrier": carrier,
                "flight_number": number,
                "flight_date": day,
                "origin": origin,
                "destination": destination,
                "status": step,
                "scheduled_departure": sched_dep,
                "scheduled_arrival": sched_arr,
                "actual_departure": actual_dep if flown else None,
                "actual_arrival": actual_arr if step == "arrived" else None,
                "tail_number": tail,
                "seat_capacity": seats,
                "received_at": times[step] + dt.timedelta(seconds=2 + seq),
            }
        )
    data.flights.append(
        {
            "flight_key": key,
            "carrier": carrier,
            "flight_number": number,
            "flight_date": day,
            "origin": origin,
            "destination": destination,
            "status": status,
            "scheduled_departure": sched_dep,
            "scheduled_arrival": sched_arr,
            "actual_departure": actual_dep,
            "actual_arrival": actual_arr,
            "dep_delay_min": _minutes(dep_delay),
            "arr_delay_min": _minutes(arr_delay),
            "cancelled": status == "cancelled",
            "diverted": status == "diverted",
            "arrived": status == "arrived",
            "on_time": arr_delay <= 15 if arr_delay is not None else None,
            "tail_number": tail,
            "seat_capacity": seats,
            "distance_km": Decimal(distance),
            "first_event_time": times[steps[0]],
            "last_event_time": times[steps[-1]],
            "event_count": len(steps),
        }
    )
    if status == "scheduled":
        return  # no passenger event has arrived for it yet
    if status == "cancelled":
        booked = checked_in = boarded = 0
        cancelled = 5 + i % 7
    else:
        booked = min(seats, 110 + (37 * i) % 90)
        checked_in = booked - i % 6
        boarded = checked_in - i % 3 if status in ("departed", "arrived", "diverted") else 0
        cancelled = i % 4
    data.loads.append(
        {
            "flight_key": key,
            "carrier": carrier,
            "flight_number": number,
            "flight_date": day,
            "origin": origin,
            "passengers_booked": booked,
            "passengers_checked_in": checked_in,
            "passengers_boarded": boarded,
            "passengers_cancelled": cancelled,
            "seat_capacity": seats,
            "load_factor": reference_impl.dec(boarded / seats, 4) if seats else None,
        }
    )


def _add_positions(data: ApiDataset) -> None:
    """The latest report of each aircraft: en route on its last flight, or parked."""
    airports = {a["iata"]: a for a in data.airports}
    last: dict[str, Row] = {}
    for flight in data.flights:
        tail = flight["tail_number"]
        if tail and (
            tail not in last or flight["scheduled_departure"] > last[tail]["scheduled_departure"]
        ):
            last[tail] = flight
    for tail, flight in sorted(last.items()):
        flying = flight["status"] in ("departed", "diverted")
        here = airports[flight["destination"] if flight["arrived"] else flight["origin"]]
        there = airports[flight["destination"]]
        lat, lon = here["latitude"], here["longitude"]
        if flying:  # half way
            lat, lon = (
                round((lat + there["latitude"]) / 2, 4),
                round((lon + there["longitude"]) / 2, 4),
            )
        event_time = flight["last_event_time"] + dt.timedelta(minutes=30 if flying else 5)
        data.positions.append(
            {
                "tail_number": tail,
                "latitude": lat,
                "longitude": lon,
                "altitude_ft": 35000.0 if flying else 0.0,
                "ground_speed_kt": 452.5 if flying else 0.0,
                "heading_deg": 12.25 if flying else None,
                "event_time": event_time,
                "message_id": str(uuid.uuid5(NAMESPACE, f"{tail}/position")),
                "source_system": "adsb_feed",
                "flight_key": flight["flight_key"],
            }
        )


def _add_marts(data: ApiDataset) -> None:
    """Both daily marts from the flights and loads, by the reference implementation of the
    mart semantics."""
    flights, loads = pd.DataFrame(data.flights), pd.DataFrame(data.loads)
    for rows, mart in (
        (data.routes, reference_impl.route_daily_performance(flights, loads)),
        (data.traffic, reference_impl.airport_daily_traffic(flights)),
    ):
        rows.extend({**row, "refreshed_at": REFRESHED_AT} for row in mart.to_dict("records"))


# (check, severity, blocking, description) of each validated table
CHECKS = {
    "curated.fact_flight": (
        ("flight_keys_unique", "ERROR", True, "Every flight_key appears once"),
        ("flight_airports_known", "ERROR", True, "Origin and destination are known airports"),
        ("flight_schedule_ordered", "WARN", False, "Scheduled arrival follows departure"),
        ("flight_seat_capacity_valid", "ERROR", True, "Seat capacity is positive when known"),
    ),
    "marts.route_daily_performance": (
        ("route_keys_unique", "ERROR", True, "One row per date, carrier and route"),
        ("route_on_time_pct_in_range", "WARN", False, "On-time share is between 0 and 100"),
        ("route_flights_positive", "ERROR", True, "Every route row counts at least one flight"),
    ),
}


def _add_quality(data: ApiDataset) -> None:
    """fact_flight validated twice (a warning failed the first time), route performance once."""
    first = dt.datetime(2026, 11, 29, 6, 0, tzinfo=dt.UTC)
    runs = [  # (table, rows validated, when, partition, checks that failed)
        ("curated.fact_flight", data.flights, first, None, {"flight_schedule_ordered"}),
        ("marts.route_daily_performance", data.routes, first + dt.timedelta(minutes=5),
         DATES[1].isoformat(), set()),
        ("curated.fact_flight", data.flights, first + dt.timedelta(hours=1), None, set()),
    ]  # fmt: skip
    for n, (table, rows, at, partition, failing) in enumerate(runs, start=1):
        checks = CHECKS[table]
        validation_id = str(uuid.uuid5(NAMESPACE, f"validation/{n}"))
        asset_key = table.replace(".", "/")
        run_id = f"api-data-run-{n}"
        page = f"validations/{table}/{run_id}.html"
        data.validations.append(
            {
                "validation_id": validation_id,
                "suite_name": table,
                "asset_key": asset_key,
                "partition_key": partition,
                "run_id": run_id,
                "evaluated_at": at,
                "success": not failing,
                "checks_evaluated": len(checks),
                "checks_failed": len(failing),
                "duration_ms": 180 + 40 * n,
                "data_docs_page": page,
            }
        )
        for check, severity, blocking, description in checks:
            failed = check in failing
            sample = [r.get("flight_key") for r in rows[:2]] if failed else []
            data.evaluations.append(
                {
                    "evaluation_id": len(data.evaluations) + 1,
                    "validation_id": validation_id,
                    "check_name": check,
                    "asset_key": asset_key,
                    "table_name": table,
                    "partition_key": partition,
                    "run_id": run_id,
                    "evaluated_at": at,
                    "success": not failed,
                    "severity": severity,
                    "blocking": blocking,
                    "description": description,
                    "expectations_evaluated": 2,
                    "expectations_failed": int(failed),
                    "element_count": len(rows),
                    "unexpected_count": len(sample),
                    "unexpected_percent": 100.0 * len(sample) / len(rows),
                    "statistics": {"element_count": len(rows), "unexpected_count": len(sample)},
                    "failing_sample": sample,
                    "unexpected_index_query": f"SELECT * FROM {table} LIMIT 0" if failed else None,
                }
            )


# what the view reads from a raw event's payload, and the raw columns it reads directly
PAYLOAD_FIELDS = ("scheduled_departure", "scheduled_arrival", "actual_departure", "actual_arrival",
                  "tail_number", "seat_capacity")  # fmt: skip
RAW_EVENT_FIELDS = ("message_id", "event_time", "source_system", "carrier", "flight_number",
                    "flight_date", "origin", "destination", "status", "flight_key",
                    "received_at")  # fmt: skip


def _raw_event(event: Row) -> Row:
    """The raw.flight_events row that curated.flight_event_history shows as `event`."""
    payload = {k: event[k] for k in ("carrier", "flight_number", "origin", "destination", "status")}
    payload["flight_date"] = event["flight_date"].isoformat()
    for name in PAYLOAD_FIELDS:
        value = event[name]
        if value is not None:
            payload[name] = value.isoformat() if isinstance(value, dt.datetime) else value
    return {
        **{k: event[k] for k in RAW_EVENT_FIELDS},
        "schema_version": 1,
        "event_type": "flight_status",
        "routing_key": f"flight.status.{event['carrier'].lower()}",
        "payload": payload,
    }


def _table_rows(data: ApiDataset) -> list[tuple[str, list[Row]]]:
    return [
        ("curated.dim_airport", data.airports),
        ("curated.fact_flight", data.flights),
        ("curated.flight_passenger_load", data.loads),
        ("raw.flight_events", [_raw_event(e) for e in data.events]),
        ("curated.aircraft_position_latest", data.positions),
        ("marts.route_daily_performance", data.routes),
        ("marts.airport_daily_traffic", data.traffic),
        ("quality.validation", data.validations),
        ("quality.check_evaluation", data.evaluations),
    ]


def insert_dataset(url: str, data: ApiDataset) -> None:
    """Write the dataset into a migrated, empty warehouse, with the event history view."""
    with connection(url) as conn, conn.cursor() as cur:
        for table, rows in _table_rows(data):
            for row in rows:
                values = [Json(v) if isinstance(v, dict | list) else v for v in row.values()]
                # evaluation ids are part of the dataset (the API pages by them)
                overriding = "OVERRIDING SYSTEM VALUE" if "evaluation_id" in row else ""
                cur.execute(
                    f"INSERT INTO {table} ({', '.join(row)}) {overriding} "
                    f"VALUES ({', '.join(['%s'] * len(values))})",
                    values,
                )
        # the view as the pipeline's flight_event_history asset creates it
        cur.execute(load_sql("curated", "flight_event_history"))


def write_data_docs(folder: Path, data: ApiDataset) -> Path:
    """A Data Docs site of the dataset's validations: an index page linking one page each."""
    links = []
    for v in data.validations:
        page = folder / v["data_docs_page"]
        page.parent.mkdir(parents=True, exist_ok=True)
        page.write_text(
            f"<!DOCTYPE html><html><head><title>{v['suite_name']}</title></head><body>"
            f"<h1>{v['suite_name']}</h1><p>{v['checks_failed']} of {v['checks_evaluated']} "
            "checks failed</p></body></html>",
            encoding="utf-8",
        )
        links.append(
            f'<li><a href="{v["data_docs_page"]}">{v["suite_name"]} {v["run_id"]}</a></li>'
        )
    (folder / "index.html").write_text(
        "<!DOCTYPE html><html><head><title>Data Docs</title></head><body><h1>Validations</h1>"
        f"<ul>{''.join(links)}</ul></body></html>",
        encoding="utf-8",
    )
    return folder
