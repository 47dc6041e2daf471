"""The SQL transformations equal the pandas reference, however the events arrive.

Same events, two implementations: `tests/reference_impl.py` (pandas, from the contract's semantics) and the
curated/mart SQL run on a real Postgres. Events come duplicated, shuffled and partial, in one batch
or in many micro-batches, and incremental updates must give what a full refresh gives.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from latam_dagster.settings import get_settings
from latam_dagster.transform.airports import load_dim_airport
from latam_dagster.transform.curated import update_all
from latam_dagster.transform.full_refresh import full_refresh
from latam_dagster.transform.marts import pending_dates_at, refresh_pending
from tests import reference_impl
from tests.conftest import RUN_ID, drop_database
from tests.transform_helpers import (
    assert_same_rows,
    assert_valid,
    chaos_events,
    create_database,
    deliver,
    fetch_rows,
    micro_batches,
    read_table,
    write_raw,
)

pytestmark = pytest.mark.integration

FACT_COLUMNS = [
    "carrier",
    "flight_number",
    "flight_date",
    "origin",
    "destination",
    "status",
    "scheduled_departure",
    "scheduled_arrival",
    "actual_departure",
    "actual_arrival",
    "dep_delay_min",
    "arr_delay_min",
    "cancelled",
    "diverted",
    "arrived",
    "on_time",
    "tail_number",
    "seat_capacity",
    "distance_km",
    "first_event_time",
    "last_event_time",
    "event_count",
]
LOAD_COLUMNS = [
    "passengers_booked",
    "passengers_checked_in",
    "passengers_boarded",
    "passengers_cancelled",
    "seat_capacity",
    "load_factor",
]
ROUTE_COLUMNS = [
    "flights",
    "cancelled",
    "diverted",
    "arrived",
    "on_time_arrivals",
    "on_time_pct",
    "avg_dep_delay_min",
    "avg_arr_delay_min",
    "p90_arr_delay_min",
    "passengers_boarded",
    "avg_load_factor",
]
AIRPORT_COLUMNS = [
    "departures",
    "arrivals",
    "cancelled",
    "avg_dep_delay_min",
    "avg_arr_delay_min",
]
POSITION_COLUMNS = [
    "latitude",
    "longitude",
    "altitude_ft",
    "ground_speed_kt",
    "heading_deg",
    "event_time",
    "source_system",
    "flight_key",
]
# distances are rounded from floating point on both sides; p90 interpolates in floating point
TOLERANCE = {"distance_km": 0.11, "p90_arr_delay_min": 0.011, "latitude": 1e-9, "longitude": 1e-9}


def assert_matches_reference(url: str, events: list[dict]) -> None:
    ref = reference_impl.compute(events, get_settings().pii_hash_key)
    fact = read_table(url, "SELECT * FROM curated.fact_flight")
    assert_same_rows(fact, ref.fact_flight, ["flight_key"], FACT_COLUMNS, TOLERANCE)

    pax = read_table(url, "SELECT * FROM curated.flight_passenger")
    assert_same_rows(
        pax,
        ref.flight_passenger,
        ["flight_key", "passenger_hash"],
        ["action", "cabin", "fare_amount", "currency", "event_count"],
        {"fare_amount": 0.001},
    )
    load = read_table(url, "SELECT * FROM curated.flight_passenger_load")
    assert_same_rows(load, ref.flight_passenger_load, ["flight_key"], LOAD_COLUMNS)

    route = read_table(url, "SELECT * FROM marts.route_daily_performance")
    assert_same_rows(
        route,
        ref.route_daily_performance,
        ["flight_date", "carrier", "origin", "destination"],
        ROUTE_COLUMNS,
        TOLERANCE,
    )
    traffic = read_table(url, "SELECT * FROM marts.airport_daily_traffic")
    assert_same_rows(
        traffic, ref.airport_daily_traffic, ["flight_date", "airport"], AIRPORT_COLUMNS
    )
    positions = read_table(url, "SELECT * FROM curated.aircraft_position_latest")
    positions["message_id"] = positions["message_id"].astype(str)
    assert_same_rows(
        positions,
        ref.aircraft_position_latest,
        ["tail_number"],
        [*POSITION_COLUMNS, "message_id"],
        TOLERANCE,
    )


def snapshot(url: str) -> dict[str, list[tuple]]:
    """Every curated and mart table without its bookkeeping columns, sorted."""
    tables = {
        "curated.fact_flight": "flight_key",
        "curated.flight_passenger": "flight_key, passenger_hash",
        "curated.flight_passenger_load": "flight_key",
        "curated.aircraft_position_latest": "tail_number",
        "marts.route_daily_performance": "flight_date, carrier, origin, destination",
        "marts.airport_daily_traffic": "flight_date, airport",
    }
    skip = {"updated_at", "updated_xid", "refreshed_at"}
    out = {}
    for table, order in tables.items():
        cols, rows = fetch_rows(url, f"SELECT * FROM {table} ORDER BY {order}")
        keep = [i for i, c in enumerate(cols) if c not in skip]
        out[table] = [tuple(r[i] for i in keep) for r in rows]
    return out


@pytest.fixture(scope="module")
def airports_template(template_db: str) -> Iterator[str]:
    """The migrated template plus curated.dim_airport, loaded once for the module."""
    name = f"latam_tpla_{RUN_ID}"
    load_dim_airport(create_database(name, template_db))
    yield name
    drop_database(name)


@pytest.fixture
def warehouse(airports_template: str) -> Iterator[str]:
    """A fresh warehouse of this test alone, with the airports loaded."""
    name = f"latam_t_{RUN_ID}_{uuid.uuid4().hex[:8]}"
    yield create_database(name, airports_template)
    drop_database(name)


def test_one_batch_of_duplicated_shuffled_partial_events_equals_reference(warehouse):
    events = chaos_events(seed=11, flights=60)
    assert_valid(events)
    delivered = deliver(events, seed=11, duplicate_share=0.2)
    write_raw(warehouse, delivered)
    update_all(warehouse)
    refresh_pending(warehouse)
    assert_matches_reference(warehouse, delivered)


def test_many_micro_batches_equal_reference_and_full_refresh(warehouse):
    events = deliver(chaos_events(seed=23, flights=40), seed=23, duplicate_share=0.15)
    micro_batches(warehouse, events, batches=10)
    assert_matches_reference(warehouse, events)
    incremental = snapshot(warehouse)
    full_refresh(warehouse)
    assert snapshot(warehouse) == incremental
    assert pending_dates_at(warehouse) == {}


def test_simulated_traffic_equals_reference(warehouse):
    from latam_dagster.simulator import generate

    messages = generate(
        5, events=6_000, duplicate_share=0.05, out_of_order_share=0.2, invalid_share=0.02
    )
    events = [m.event for m in messages if m.valid]
    micro_batches(warehouse, events, batches=4)
    assert_matches_reference(warehouse, events)
