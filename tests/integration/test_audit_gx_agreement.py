"""One definition of each rule, two evaluators: the audit's compiled SQL and Great Expectations.

The audit (`quality.audit`) compiles every expectation of a suite to a SQL predicate and holds
back the rows of a micro-batch that break a row rule; Great Expectations validates the same
expectations on whole tables. Both must find the same rows. Staging tables get good rows, rows on
the bounds (which pass) and rows breaking every expectation of every row rule: through raw events
and the real curated SQL where the contract lets such data through, by INSERT into `staging.*`
(then audited in the same transaction) where it does not. Then GX validates each suite pointed at
its staging table, and for every row rule the rows GX finds unexpected are exactly the rows the
audit holds back (or, for a non-blocking rule, counts as failing), expectation by expectation; the
pandas reference's own evaluation of the rules agrees with both. A broken table rule (one flight
under two keys) blocks the publish, and GX fails it too.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg2.extensions
import pytest

from latam_dagster.db import connect
from latam_dagster.quality.audit import AuditBlocked, AuditedTable, AuditResult, audit_and_publish
from latam_dagster.quality.gx_resource import GreatExpectationsResource
from latam_dagster.quality.outcome import ExpectationOutcome, SuiteOutcome
from latam_dagster.tables.rules import ROW, TableSuite
from latam_dagster.transform.curated import TABLES, StepResult, update_all, update_table
from tests import reference_impl
from tests.integration.ingest_helpers import (
    DROP,
    make_flight_event,
    make_passenger_event,
    make_position_event,
)
from tests.transform_helpers import (
    fetch_rows,
    read_rejects,
    read_table,
    write_raw,
)

pytestmark = pytest.mark.integration

DAY = "2026-11-27"
AUDITED: dict[str, AuditedTable] = {n: t.audit for n, t in TABLES.items() if t.audit}
Cursor = psycopg2.extensions.cursor


@pytest.fixture
def gx(warehouse: str, tmp_path: Path) -> GreatExpectationsResource:
    """GX on the test's warehouse, returning every failing row (not a sample) and no history."""
    return GreatExpectationsResource(
        warehouse_url=warehouse,
        quality_dir=str(tmp_path / "quality"),
        data_docs_dir=str(tmp_path / "data_docs"),
        build_data_docs=False,
        record_history=False,
        sample_size=100_000,
    )


def key(number: int) -> str:
    return f"LA{number}-{DAY}-SCL"


# -- batch 1: raw events through the real curated SQL --------------------------------------------


def flight(number: int, **payload) -> dict:
    return make_flight_event(payload={"flight_number": number, **payload})


def boarded(number: int, count: int) -> list[dict]:
    return [
        make_passenger_event(payload={"flight_number": number, "action": "boarded"})
        for _ in range(count)
    ]


def position(tail: str, **payload) -> dict:
    return make_position_event(payload={"tail_number": tail, **payload})


def raw_events() -> list[dict]:
    """Flights, passengers and positions the contract accepts, some breaking row rules."""
    at = f"{DAY}T12:30:00-03:00"  # every flight's scheduled departure
    arrival = f"{DAY}T14:45:00-05:00"  # and arrival (4 h 15 min later)
    return [
        # good flights, some with missing values (which pass every value check)
        flight(100),
        flight(101, status="arrived", actual_departure=at, actual_arrival=arrival),
        flight(102, status="cancelled", scheduled_arrival=None, tail_number=None),
        flight(103, seat_capacity=None),
        # on the bounds: pass
        flight(110, status="departed", actual_departure="2026-11-29T12:30:00-03:00"),  # +2880
        flight(111, status="arrived", actual_arrival=f"{DAY}T11:45:00-05:00"),  # arrival -180
        flight(112, seat_capacity=1000),
        flight(113, seat_capacity=0),
        # flight_airports_known
        flight(120, destination="QQQ"),
        make_flight_event(payload={"flight_number": 121, "origin": "ZZZ", "destination": "QQQ"}),
        make_flight_event(payload={"flight_number": 122, "origin": "XQX"}),
        # flight_schedule_ordered: arrival before or at departure, scheduled or actual
        flight(130, scheduled_arrival=f"{DAY}T11:00:00-03:00"),
        flight(131, scheduled_arrival=at),
        flight(
            132,
            status="arrived",
            actual_departure=f"{DAY}T16:00:00-03:00",
            actual_arrival=f"{DAY}T15:50:00-03:00",
        ),
        # flight_delays_plausible: a minute beyond each bound
        flight(140, status="departed", actual_departure="2026-11-29T12:31:00-03:00"),
        flight(141, status="arrived", actual_arrival=f"{DAY}T11:44:00-05:00"),
        flight(142, status="departed", actual_departure=f"{DAY}T09:10:00-03:00"),  # -200
        # flight_seat_capacity_valid (its passenger load breaks load_factor_plausible too)
        flight(150, seat_capacity=1001),
        # several rules at once
        flight(
            160,
            destination="QQQ",
            seat_capacity=1500,
            status="departed",
            actual_departure="2026-11-30T12:30:00-03:00",
        ),
        # flight_route_plausible (not blocking): going nowhere
        flight(170, destination="SCL"),
        # loads: 2 of 1 seat; 21 of 20 (the 1.05 bound: passes); 22 of 20
        flight(180, seat_capacity=1),
        *boarded(180, 2),
        flight(181, seat_capacity=20),
        *boarded(181, 21),
        flight(182, seat_capacity=20),
        *boarded(182, 22),
        *boarded(100, 3),
        *boarded(150, 1),
        # load_flight_known (not blocking): passengers of a flight nobody reported
        *boarded(199, 2),
        # positions: good, on the bounds, and position_motion_plausible (not blocking)
        position("CC-P01"),
        position("CC-P02", heading_deg=359.9, altitude_ft=60000, ground_speed_kt=800),
        position("CC-P03", altitude_ft=None, ground_speed_kt=None, heading_deg=None),
        position("CC-P04", ground_speed_kt=800.5),
        position("CC-P05", altitude_ft=65000),
        position("CC-P06", altitude_ft=-1800, carrier=DROP, flight_number=DROP),
    ]


# -- batch 2: rows the contract refuses, written to staging and audited directly -----------------


def _flight_of(number: int) -> dict:
    """The key columns of flight LA`number` from SCL on DAY."""
    return {
        "flight_key": key(number),
        "carrier": "LA",
        "flight_number": number,
        "flight_date": DAY,
        "origin": "SCL",
    }


def flight_row(number: int, **values) -> dict:
    return {
        **_flight_of(number),
        "destination": "LIM",
        "status": "scheduled",
        "cancelled": False,
        "diverted": False,
        "arrived": False,
        "distance_km": 2460.5,
        "first_event_time": f"{DAY}T10:00:00Z",
        "last_event_time": f"{DAY}T10:00:00Z",
        "event_count": 1,
        **values,
    }


def load_row(number: int, **values) -> dict:
    counts = dict.fromkeys(("booked", "checked_in", "boarded", "cancelled"), 0)
    return {
        **_flight_of(number),
        **{f"passengers_{k}": v for k, v in counts.items()},
        "seat_capacity": 100,
        "load_factor": 0,
        **values,
    }


def position_row(tail: str, **values) -> dict:
    return {
        "tail_number": tail,
        "latitude": -33.39,
        "longitude": -70.79,
        "event_time": f"{DAY}T13:00:00Z",
        "message_id": str(uuid.uuid4()),
        "source_system": "adsb-feed",
        **values,
    }


DIRECT_ROWS: dict[str, list[dict]] = {
    "fact_flight": [
        flight_row(900),  # good
        flight_row(901, carrier="la"),
        flight_row(902, flight_number=0),
        flight_row(903, flight_number=10000),
        flight_row(904, origin="SC1"),
        flight_row(905, destination="lim"),
        flight_row(906, status="landed"),
        flight_row(907, distance_km=25000),  # flight_route_plausible, not blocking
    ],
    "flight_passenger_load": [
        load_row(900, passengers_booked=106, passengers_checked_in=106, passengers_boarded=105)
        | {"load_factor": 1.05},  # on the bound: passes
        load_row(901, passengers_booked=-1, passengers_checked_in=-2, passengers_boarded=-3),
        load_row(902, passengers_cancelled=-1),
        load_row(903, passengers_booked=1, passengers_checked_in=2),
        load_row(904, passengers_booked=5, passengers_checked_in=1, passengers_boarded=3),
        load_row(905, passengers_boarded=-1),
        load_row(906, load_factor=-0.5),
        load_row(907, seat_capacity=-1, load_factor=None),
        load_row(908, passengers_booked=106, passengers_checked_in=106, passengers_boarded=106)
        | {"load_factor": 1.06},
        load_row(990),  # no such flight: load_flight_known, not blocking
    ],
    "aircraft_position_latest": [
        position_row("CC-X00", heading_deg=0),  # good
        position_row("CC-X01", latitude=90.5),
        position_row("CC-X02", longitude=-180.5),
        position_row("CC-X03", heading_deg=360),
        position_row("CC-X04", heading_deg=-0.5),
        position_row("CC-X05", latitude=-91, ground_speed_kt=900),
    ],
}


@contextmanager
def transaction(url: str) -> Iterator[Cursor]:
    conn = connect(url)
    try:
        with conn, conn.cursor() as cur:
            yield cur
    finally:
        conn.close()


def insert(cur: Cursor, table: str, rows: list[dict]) -> None:
    for row in rows:
        placeholders = ", ".join(["%s"] * len(row))
        cur.execute(
            f"INSERT INTO {table} ({', '.join(row)}) VALUES ({placeholders})", list(row.values())
        )


def write_and_audit(url: str, table: AuditedTable, rows: list[dict]) -> AuditResult:
    """Write rows to staging and audit them in one transaction, as the curated SQL's are."""
    with transaction(url) as cur:
        insert(cur, table.staging, rows)
        return audit_and_publish(cur, table, run_id="gx-agreement")


# -- reading the two verdicts ------------------------------------------------------------------


def validate_staging(gx: GreatExpectationsResource, suite: TableSuite) -> SuiteOutcome:
    """GX on the staging table; renamed too, since the engine keeps one data asset per name."""
    staging = "staging." + suite.table.split(".", 1)[1]
    return gx.validate(dataclasses.replace(suite, table=staging, name=staging))


def gx_keys(e: ExpectationOutcome, key_column: str) -> set[str]:
    """The keys of every row GX found unexpected (the sample is complete: see `gx`)."""
    keys = {str(row[key_column]) for row in e.sample}
    assert len(keys) == e.unexpected_count, (e.label, e.observed, e.sample[:3])
    return keys


def audit_failures(results: list[AuditResult]) -> dict[str, tuple[int, list[int]]]:
    """Per rule over the batches: rows failing it, and rows failing each expectation."""
    out: dict[str, tuple[int, list[int]]] = {}
    for result in results:
        for r in result.rules:
            rows, per_expectation = out.get(r.rule.name, (0, [0] * len(r.expectation_failures)))
            summed = [a + b for a, b in zip(per_expectation, r.expectation_failures, strict=True)]
            out[r.rule.name] = (rows + r.failing_rows, summed)
    return out


def reference_verdict(url: str, name: str) -> reference_impl.Audit:
    """The pandas reference's evaluation of the row rules on what staging holds."""
    frame = read_table(url, f"SELECT * FROM staging.{name}")
    if name == "fact_flight":
        _, airports = fetch_rows(url, "SELECT iata FROM curated.dim_airport")
        return reference_impl.audit_fact_flight(frame, {a for (a,) in airports})
    if name == "flight_passenger_load":
        _, flights = fetch_rows(url, "SELECT flight_key FROM staging.fact_flight")
        return reference_impl.audit_flight_passenger_load(frame, {k for (k,) in flights})
    return reference_impl.audit_aircraft_position_latest(frame)


def test_the_audit_holds_back_exactly_the_rows_gx_finds_unexpected(warehouse, gx, monkeypatch):
    monkeypatch.setenv("LATAM_QUALITY_REJECT_MAX_PCT", "100")  # most rows here are bad on purpose
    write_raw(warehouse, raw_events())
    steps: list[StepResult] = update_all(warehouse)
    audits: dict[str, list[AuditResult]] = {s.audit.table.name: [s.audit] for s in steps if s.audit}
    for name, rows in DIRECT_ROWS.items():
        audits[name].append(write_and_audit(warehouse, AUDITED[name], rows))
    rejects = read_rejects(warehouse)

    for name, table in AUDITED.items():
        outcome = validate_staging(gx, table.suite)
        audited = audit_failures(audits[name])
        reference = reference_verdict(warehouse, name)
        held: set[str] = set()
        for rule in outcome.rules:
            if rule.rule.level != ROW:
                assert rule.success, (name, rule.rule.name, [e.as_json() for e in rule.failed])
                assert audited[rule.rule.name][0] == 0
                continue
            where = (table.published, rule.rule.name)
            found = [gx_keys(e, table.key) for e in rule.expectations]
            # the data breaks every expectation of every row rule, and passes on the bounds
            missing = [e.label for e, f in zip(rule.expectations, found, strict=True) if not f]
            assert not missing, (where, missing)
            # expectation by expectation, the audit counts the rows GX finds
            assert audited[rule.rule.name][1] == [len(f) for f in found], where
            gx_rows = set().union(*found)
            assert audited[rule.rule.name][0] == len(gx_rows), where
            by_reference = reference.rejects if rule.rule.holds_back else reference.warnings
            assert {k for t, k, r in by_reference if r == rule.rule.name} == gx_rows, where
            if rule.rule.holds_back:
                assert {k for t, k, r in rejects if (t, r) == where} == gx_rows, where
                held |= gx_rows
        # what was not held back was published, and nothing else
        _, staged = fetch_rows(warehouse, f"SELECT {table.key} FROM {table.staging}")
        _, published = fetch_rows(warehouse, f"SELECT {table.key} FROM {table.published}")
        assert {k for (k,) in published} == {k for (k,) in staged} - held, name
        assert {k for t, k, _ in rejects if t == table.published} == held, name


def test_a_flight_under_two_keys_blocks_the_publish_and_fails_gx_too(warehouse, gx):
    write_raw(warehouse, [make_flight_event()])
    update_all(warehouse)
    # the same flight (carrier, number, date, origin) computed again under another key
    twin = "LA8000-2026-11-27-SCL"
    with transaction(warehouse) as cur:
        insert(cur, "staging.fact_flight", [flight_row(800) | {"flight_key": twin}])
    later = f"{DAY}T11:00:00-03:00"
    write_raw(
        warehouse,
        [make_flight_event(event_time=later, payload={"status": "boarding"}), flight(801)],
    )
    with pytest.raises(AuditBlocked) as blocked:
        update_table(warehouse, "fact_flight")
    [keys_audit] = [r for r in blocked.value.result.rules if r.rule.name == "flight_keys_unique"]
    assert not keys_audit.passed
    compound = [e.kind for e in keys_audit.rule.expectations].index(
        "ExpectCompoundColumnsToBeUnique"
    )
    assert [i for i, n in enumerate(keys_audit.expectation_failures) if n] == [compound]
    # nothing of the batch is published, and staging rolled back with it
    published = "SELECT flight_key, status FROM curated.fact_flight ORDER BY 1"
    assert fetch_rows(warehouse, published)[1] == [(key(800), "scheduled")]
    _, staged = fetch_rows(warehouse, "SELECT flight_key, status FROM staging.fact_flight")
    assert sorted(staged) == [(key(800), "scheduled"), (twin, "scheduled")]
    _, batches = fetch_rows(
        warehouse,
        "SELECT blocked, reason FROM quality.audit_batch"
        " WHERE table_name = 'curated.fact_flight' ORDER BY audit_id",
    )
    assert [b for b, _ in batches] == [False, True]
    assert "flight_keys_unique" in batches[-1][1]

    outcome = validate_staging(gx, AUDITED["fact_flight"].suite)
    [keys_rule] = [r for r in outcome.rules if r.rule.name == "flight_keys_unique"]
    assert [e.kind for e in keys_rule.failed] == ["ExpectCompoundColumnsToBeUnique"]
    assert keys_rule.failed[0].unexpected_count == 2  # GX counts both rows of the flight

    # once the data is fixed, the same batch is published: its watermarks stayed
    with transaction(warehouse) as cur:
        cur.execute("DELETE FROM staging.fact_flight WHERE flight_key = %s", (twin,))
    assert update_table(warehouse, "fact_flight").audit.published == 2
    assert fetch_rows(warehouse, published)[1] == [(key(800), "boarding"), (key(801), "scheduled")]
