"""The SQL transformations equal the pandas reference, however the events arrive.

Same events, two implementations: `tests/reference_impl.py` (pandas, from the contract's semantics) and the
curated/mart SQL run on a real Postgres. Events come duplicated, shuffled and partial, in one batch
or in many micro-batches, and incremental updates must give what a full refresh gives. Through
write-audit-publish: `staging.*` holds the computed rows, `curated.*` the rows that pass their row
rules, `quality.rejects` the others, and the marts read only what was published.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from latam_dagster.settings import get_quality_settings, get_settings
from latam_dagster.transform.curated import update_all
from latam_dagster.transform.full_refresh import full_refresh
from latam_dagster.transform.marts import pending_dates_at, refresh_pending
from tests import reference_impl
from tests.integration.ingest_helpers import make_flight_event, make_passenger_event
from tests.reference_impl import FACT_FLIGHT, PASSENGER_LOAD
from tests.transform_helpers import (
    assert_same_rows,
    assert_valid,
    chaos_events,
    deliver,
    fetch_rows,
    micro_batches,
    read_rejects,
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
UNKNOWN = "QQQ"  # the airport chaos_events flies to that dim_airport lacks
# distances are rounded from floating point on both sides; p90 interpolates in floating point
TOLERANCE = {"distance_km": 0.11, "p90_arr_delay_min": 0.011, "latitude": 1e-9, "longitude": 1e-9}


def assert_matches_reference(url: str, events: list[dict]) -> reference_impl.Reference:
    """staging.* equals the computed rows, curated.* the published ones, the marts theirs, and
    quality.rejects what the reference holds back. Returns the reference for further checks."""
    ref = reference_impl.compute(events, get_settings().pii_hash_key.get_secret_value())
    audited = (
        ("fact_flight", ["flight_key"], FACT_COLUMNS),
        ("flight_passenger_load", ["flight_key"], LOAD_COLUMNS),
        ("aircraft_position_latest", ["tail_number"], [*POSITION_COLUMNS, "message_id"]),
    )
    for table, key, columns in audited:
        for schema, expected in (
            ("staging", getattr(ref, table)),
            ("curated", getattr(ref, f"published_{table}")),
        ):
            got = read_table(url, f"SELECT * FROM {schema}.{table}")
            if "message_id" in got:
                got["message_id"] = got["message_id"].astype(str)
            assert_same_rows(got, expected, key, columns, TOLERANCE, f"{schema}.{table}")
    assert read_rejects(url) == ref.rejects

    pax = read_table(url, "SELECT * FROM curated.flight_passenger")
    assert_same_rows(
        pax,
        ref.flight_passenger,
        ["flight_key", "passenger_hash"],
        ["action", "cabin", "fare_amount", "currency", "event_count"],
        {"fare_amount": 0.001},
        "curated.flight_passenger",
    )
    route = read_table(url, "SELECT * FROM marts.route_daily_performance")
    assert_same_rows(
        route,
        ref.route_daily_performance,
        ["flight_date", "carrier", "origin", "destination"],
        ROUTE_COLUMNS,
        TOLERANCE,
        "marts.route_daily_performance",
    )
    traffic = read_table(url, "SELECT * FROM marts.airport_daily_traffic")
    assert_same_rows(
        traffic,
        ref.airport_daily_traffic,
        ["flight_date", "airport"],
        AIRPORT_COLUMNS,
        label="marts.airport_daily_traffic",
    )
    return ref


def assert_unknown_airport_held_back(url: str, ref: reference_impl.Reference) -> None:
    """The flights to the airport missing from dim_airport are held back: in staging, not in
    curated nor in the marts; their passenger loads pass and are published."""
    flights = ref.fact_flight
    unknown = set(flights.loc[flights["destination"] == UNKNOWN, "flight_key"])
    assert unknown, "the events should include flights to the unknown airport"
    assert ref.held(FACT_FLIGHT, "flight_airports_known") == unknown
    _, staged = fetch_rows(url, "SELECT flight_key FROM staging.fact_flight")
    _, published = fetch_rows(url, "SELECT flight_key FROM curated.fact_flight")
    assert unknown <= {k for (k,) in staged}
    assert not unknown & {k for (k,) in published}
    _, loads = fetch_rows(url, "SELECT flight_key FROM curated.flight_passenger_load")
    assert unknown <= {k for (k,) in loads}
    _, mart_airports = fetch_rows(
        url,
        "SELECT destination FROM marts.route_daily_performance"
        " UNION SELECT airport FROM marts.airport_daily_traffic",
    )
    assert UNKNOWN not in {a for (a,) in mart_airports}


def snapshot(url: str) -> dict[str, list[tuple]]:
    """Every computed, published, held-back and mart row without its bookkeeping, sorted."""
    tables = {
        "staging.fact_flight": "flight_key",
        "staging.flight_passenger_load": "flight_key",
        "staging.aircraft_position_latest": "tail_number",
        "curated.fact_flight": "flight_key",
        "curated.flight_passenger": "flight_key, passenger_hash",
        "curated.flight_passenger_load": "flight_key",
        "curated.aircraft_position_latest": "tail_number",
        "quality.rejects": "table_name, row_key, rule",
        "marts.route_daily_performance": "flight_date, carrier, origin, destination",
        "marts.airport_daily_traffic": "flight_date, airport",
    }
    skip = {"updated_at", "updated_xid", "refreshed_at", "first_seen", "last_seen", "run_id"}
    out = {}
    for table, order in tables.items():
        cols, rows = fetch_rows(url, f"SELECT * FROM {table} ORDER BY {order}")
        keep = [i for i, c in enumerate(cols) if c not in skip]
        out[table] = [tuple(r[i] for i in keep) for r in rows]
    return out


def test_one_batch_of_duplicated_shuffled_partial_events_equals_reference(warehouse):
    events = chaos_events(seed=11, flights=60)
    assert_valid(events)
    delivered = deliver(events, seed=11, duplicate_share=0.2)
    write_raw(warehouse, delivered)
    update_all(warehouse)
    refresh_pending(warehouse)
    ref = assert_matches_reference(warehouse, delivered)
    assert_unknown_airport_held_back(warehouse, ref)
    assert ref.rejects == {(FACT_FLIGHT, k, "flight_airports_known") for k in ref.held(FACT_FLIGHT)}


def test_many_micro_batches_equal_reference_and_full_refresh(warehouse):
    events = chaos_events(seed=23, flights=40, implausible=True)
    events = deliver(events, seed=23, duplicate_share=0.15)
    steps = micro_batches(warehouse, events, batches=10)
    ref = assert_matches_reference(warehouse, events)
    assert_unknown_airport_held_back(warehouse, ref)
    # flights held back for an unknown airport and a late take-off, a load for an overfull cabin
    assert {(table, rule) for table, _, rule in ref.rejects} == {
        (FACT_FLIGHT, "flight_airports_known"),
        (FACT_FLIGHT, "flight_delays_plausible"),
        (PASSENGER_LOAD, "load_factor_plausible"),
    }
    # some rows were published, then withdrawn when a later event broke a rule
    assert sum(s.audit.withdrawn for s in steps if s.audit) > 0
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
    ref = assert_matches_reference(warehouse, events)
    assert ref.rejects == set()  # the simulated airline's operations are all plausible


def test_held_back_rows_leave_the_marts_as_the_reference_says(warehouse):
    """A held-back flight is absent from the marts; a flight whose load is held back still counts,
    without its passengers and load factor."""
    times = {"actual_departure": "2026-11-27T12:35:00-03:00"}
    events = [
        make_flight_event(payload={"flight_number": 800, "seat_capacity": 2}),  # 3 board: 150 %
        make_flight_event(
            payload={"flight_number": 801, "status": "arrived", **times}
            | {"actual_arrival": "2026-11-27T14:40:00-05:00"}
        ),
        make_flight_event(  # took off 50 hours late
            payload={"flight_number": 802, "status": "departed"}
            | {"actual_departure": "2026-11-29T14:30:00-03:00"}
        ),
        *(
            make_passenger_event(payload={"flight_number": 800, "action": "boarded"})
            for _ in range(3)
        ),
        *(
            make_passenger_event(payload={"flight_number": n, "action": "boarded"})
            for n in (801, 801, 802)
        ),
    ]
    write_raw(warehouse, events)
    update_all(warehouse)
    refresh_pending(warehouse)
    ref = assert_matches_reference(warehouse, events)
    assert ref.rejects == {
        (PASSENGER_LOAD, "LA800-2026-11-27-SCL", "load_factor_plausible"),
        (FACT_FLIGHT, "LA802-2026-11-27-SCL", "flight_delays_plausible"),
    }
    _, rows = fetch_rows(
        warehouse,
        "SELECT flights, arrived, passengers_boarded, avg_load_factor"
        " FROM marts.route_daily_performance",
    )
    assert rows == [(2, 1, 2, Decimal("0.0115"))]  # LA800 and LA801; LA801's 2 of 174 seats


def test_a_full_refresh_publishes_what_many_small_batches_published(warehouse):
    # in flight order: each batch touches a few flights and holds back two at most
    events = chaos_events(seed=29, flights=200)
    micro_batches(warehouse, events, batches=10)
    held = read_rejects(warehouse)
    assert len(held) >= get_quality_settings().reject_min_rows  # more than a batch may hold
    incremental = snapshot(warehouse)
    # rows already held back do not count again toward the share: the rebuild publishes
    full_refresh(warehouse)
    assert snapshot(warehouse) == incremental
