"""The GX asset checks on a real warehouse: clean data passes, each class of bad data is caught.

Clean simulated events go through the real curated and mart SQL. Then one kind of bad data is
injected (through raw events where the contract lets it through, directly into the curated table
where it does not) and the curated and mart assets run again with every check: the matching check
fails, names the failing rows, stops the assets downstream in that run (the marts keep their last
good data), and lands in `quality.*` with SQL that finds every failing row.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance, ExecuteInProcessResult, asset, materialize

from latam_dagster.assets.curated import curated_assets
from latam_dagster.assets.marts import daily_partitions, mart_assets
from latam_dagster.assets.reference import reference_assets
from latam_dagster.checks.asset_checks import asset_checks
from latam_dagster.resources import WarehouseResource
from latam_dagster.resources.gx import GreatExpectationsResource
from latam_dagster.sensors.mart_sensors import range_tags
from latam_dagster.simulator.generator import generate
from latam_dagster.transform.airports import load_dim_airport
from latam_dagster.transform.curated import update_all
from latam_dagster.transform.marts import refresh_pending
from tests.conftest import query
from tests.transform_helpers import write_raw

pytestmark = pytest.mark.integration

FACT = AssetKey(["curated", "fact_flight"])
POSITIONS = AssetKey(["curated", "aircraft_position_latest"])
DOWNSTREAM_OF_FACT = {
    AssetKey(["curated", "flight_passenger_load"]),
    AssetKey(["marts", "route_daily_performance"]),
    AssetKey(["marts", "airport_daily_traffic"]),
}


@asset(deps=[POSITIONS], key=AssetKey(["test", "positions_snapshot"]))
def positions_snapshot() -> None:
    """Stands for a consumer of the latest positions (the API reads the table itself)."""


def simulated_events(count: int = 1500, seed: int = 11) -> list[dict]:
    """Contract-valid events of the simulated airline (real airports, plausible operations)."""
    return [m.event for m in generate(seed=seed, events=count) if m.valid and m.event]


def gx_resource(url: str | None, tmp_path: Path, **overrides) -> GreatExpectationsResource:
    """GX writing under `tmp_path`; with `url` None the checks validate the warehouse resource's."""
    return GreatExpectationsResource(
        warehouse_url=url,
        quality_dir=str(tmp_path / "quality"),
        data_docs_dir=str(tmp_path / "data_docs"),
        **overrides,
    )


def mart_range(url: str) -> tuple[date, date]:
    """The flight dates of the events that have a daily partition."""
    ((first, last),) = query(
        url, "SELECT min(flight_date), max(flight_date) FROM raw.flight_events"
    )
    last_partition = date.fromisoformat(daily_partitions.get_last_partition_key())
    return first, min(last, last_partition)


def run_pipeline(
    url: str, tmp_path: Path, assets: list, instance: DagsterInstance | None = None
) -> ExecuteInProcessResult:
    """Curated assets, the marts over the warehouse's dates and every check, in one run."""
    start, end = mart_range(url)
    return materialize(
        [*assets, *asset_checks],
        resources={"warehouse": WarehouseResource(url=url), "gx": gx_resource(None, tmp_path)},
        instance=instance or DagsterInstance.ephemeral(),
        tags=range_tags(start, end),
        raise_on_error=False,
    )


def load_clean(url: str) -> None:
    """Clean simulated data through the real SQL, without Dagster (fast set-up)."""
    load_dim_airport(url)
    write_raw(url, simulated_events())
    update_all(url)
    refresh_pending(url)


def evaluations(result: ExecuteInProcessResult) -> dict[tuple[str, str], object]:
    return {
        (e.asset_key.to_user_string(), e.check_name): e
        for e in result.get_asset_check_evaluations()
    }


def materialized(result: ExecuteInProcessResult) -> set[AssetKey]:
    return {e.asset_key for e in result.get_asset_materialization_events()}


def test_clean_data_passes_every_check(warehouse_url, tmp_path):
    write_raw(warehouse_url, simulated_events())
    result = run_pipeline(
        warehouse_url, tmp_path, [*reference_assets, *curated_assets, *mart_assets]
    )
    assert result.success
    evals = evaluations(result)
    failed = {k: e.description for k, e in evals.items() if not e.passed}
    assert failed == {}
    expected = {
        (s.asset_key.to_user_string(), s.name)
        for checks in asset_checks
        for s in checks.check_specs
        if s.asset_key.path[0] != "raw"  # raw assets are not part of this run
    }
    assert set(evals) == expected
    # every evaluation is in the history, with the run id and the partition range of the marts
    rows = query(
        warehouse_url,
        """SELECT asset_key, check_name, success, run_id, partition_key
           FROM quality.check_evaluation""",
    )
    assert {(a, c) for a, c, *_ in rows} == expected
    assert all(ok and run == result.run_id for _a, _c, ok, run, _p in rows)
    start, end = mart_range(warehouse_url)
    assert {p for a, _c, _ok, _r, p in rows if a.startswith("marts/")} == {
        f"{start.isoformat()}...{end.isoformat()}"
    }
    # Data Docs: an index and a page per validation
    assert (tmp_path / "data_docs" / "index.html").exists()
    pages = query(warehouse_url, "SELECT data_docs_page FROM quality.validation")
    assert pages and all((tmp_path / "data_docs" / p).exists() for (p,) in pages)


@dataclass(frozen=True)
class BadData:
    """One class of bad data: how to inject it, which check must catch it, which rows fail."""

    name: str
    asset_key: AssetKey
    check: str
    inject: Callable[[str], dict[str, object]]  # returns a key of a row that must be named
    downstream: set[AssetKey]


def _victim_flight(url: str) -> tuple[str, str, int, date, str, datetime]:
    rows = query(
        url,
        """SELECT flight_key, carrier, flight_number, flight_date, origin, scheduled_departure
           FROM curated.fact_flight WHERE scheduled_departure IS NOT NULL
           ORDER BY flight_key LIMIT 1""",
    )
    return rows[0]


def _flight_event(key: tuple, event_time: datetime, **payload) -> dict:
    _fk, carrier, number, flight_date, origin, _dep = key
    return {
        "message_id": str(uuid.uuid4()),
        "schema_version": 1,
        "event_type": "flight_status",
        "event_time": event_time.isoformat(),
        "source_system": "ops_control",
        "payload": {
            "carrier": carrier,
            "flight_number": number,
            "flight_date": flight_date.isoformat(),
            "origin": origin,
            "status": "scheduled",
            **payload,
        },
    }


def _clone_row(url: str, table: str, key_column: str, key: str, **values: object) -> None:
    """Copy one row of a curated table under new values (a row no raw event will ever rewrite).

    Bad rows written straight into a curated table are clones rather than edits: an incremental
    update may re-apply the raw events of its last window, which would repair an edited row.
    """
    schema, name = table.split(".")
    columns = [
        c
        for (c,) in query(
            url,
            """SELECT column_name FROM information_schema.columns
               WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position""",
            (schema, name),
        )
    ]
    select = ", ".join(f"%({c})s" if c in values else c for c in columns)
    query(
        url,
        f"INSERT INTO {table} ({', '.join(columns)}) "
        f"SELECT {select} FROM {table} WHERE {key_column} = %(key)s",
        {**values, "key": key},
    )


def inject_duplicate_key(url: str) -> dict[str, object]:
    """A second row for the same flight under a zero-padded key, as a key-building bug makes."""
    fk, carrier, number, *_ = _victim_flight(url)
    padded = fk.replace(f"{carrier}{number}-", f"{carrier}{number:05d}-", 1)
    _clone_row(url, "curated.fact_flight", "flight_key", fk, flight_key=padded)
    return {"flight_key": padded}


def inject_unknown_airport(url: str) -> dict[str, object]:
    """A source reports a destination that no airport has: through raw, as the drain would."""
    victim = _victim_flight(url)
    later = datetime.now(UTC) + timedelta(days=1)
    write_raw(url, [_flight_event(victim, later, destination="QQQ")])
    return {"flight_key": victim[0], "destination": "QQQ"}


def inject_negative_seat_capacity(url: str) -> dict[str, object]:
    """The contract rejects it at the door, so it can only come from a faulty transformation."""
    fk, carrier, number, day, origin, _dep = _victim_flight(url)
    (free,) = query(
        url,
        """SELECT min(n) FROM generate_series(1, 9999) AS n WHERE NOT EXISTS (
               SELECT 1 FROM curated.fact_flight WHERE carrier = %s AND flight_number = n
                  AND flight_date = %s AND origin = %s)""",
        (carrier, day, origin),
    )[0]
    new_key = f"{carrier}{free}-{day.isoformat()}-{origin}"
    _clone_row(
        url,
        "curated.fact_flight",
        "flight_key",
        fk,
        flight_key=new_key,
        flight_number=free,
        seat_capacity=-180,
    )
    return {"flight_key": new_key, "seat_capacity": -180}


def inject_arrival_before_departure(url: str) -> dict[str, object]:
    """A schedule update whose arrival precedes its departure: through raw."""
    victim = _victim_flight(url)
    dep = victim[5]
    later = datetime.now(UTC) + timedelta(days=1)
    event = _flight_event(
        victim,
        later,
        scheduled_departure=dep.isoformat(),
        scheduled_arrival=(dep - timedelta(hours=2)).isoformat(),
    )
    (dest,) = query(
        url, "SELECT destination FROM curated.fact_flight WHERE flight_key = %s", (victim[0],)
    )[0]
    event["payload"]["destination"] = dest
    write_raw(url, [event])
    return {"flight_key": victim[0]}


def inject_latitude_123(url: str) -> dict[str, object]:
    (tail,) = query(
        url, "SELECT tail_number FROM curated.aircraft_position_latest ORDER BY 1 LIMIT 1"
    )[0]
    _clone_row(
        url,
        "curated.aircraft_position_latest",
        "tail_number",
        tail,
        tail_number="CC-QA123",
        latitude=123.0,
    )
    return {"tail_number": "CC-QA123", "latitude": 123.0}


BAD_DATA = [
    BadData("duplicate_key", FACT, "flight_keys_unique", inject_duplicate_key, DOWNSTREAM_OF_FACT),
    BadData(
        "unknown_airport", FACT, "flight_airports_known", inject_unknown_airport, DOWNSTREAM_OF_FACT
    ),
    BadData(
        "negative_seat_capacity",
        FACT,
        "flight_seat_capacity_valid",
        inject_negative_seat_capacity,
        DOWNSTREAM_OF_FACT,
    ),
    BadData(
        "arrival_before_departure",
        FACT,
        "flight_schedule_ordered",
        inject_arrival_before_departure,
        DOWNSTREAM_OF_FACT,
    ),
    BadData(
        "latitude_123",
        POSITIONS,
        "position_coordinates_in_range",
        inject_latitude_123,
        {AssetKey(["test", "positions_snapshot"])},
    ),
]


def _mart_rows(url: str) -> list[tuple]:
    return query(url, "SELECT * FROM marts.route_daily_performance ORDER BY 1, 2, 3, 4")


@pytest.mark.parametrize("bad", BAD_DATA, ids=lambda b: b.name)
def test_bad_data_fails_its_check_and_stops_downstream(warehouse_url, tmp_path, bad: BadData):
    load_clean(warehouse_url)
    marts_before = _mart_rows(warehouse_url)
    named = bad.inject(warehouse_url)

    result = run_pipeline(
        warehouse_url, tmp_path, [*curated_assets, *mart_assets, positions_snapshot]
    )

    # the matching check, and only it, fails with ERROR severity (blocking)
    evals = evaluations(result)
    failed = {k for k, e in evals.items() if not e.passed}
    key = (bad.asset_key.to_user_string(), bad.check)
    assert failed == {key}
    evaluation = evals[key]
    assert evaluation.blocking and evaluation.severity.value == "ERROR"

    # the check names the failing rows and gives the SQL that lists all of them
    md = {k: v.value for k, v in evaluation.metadata.items()}
    sample = md["failing_sample"]
    assert any(all(row.get(k) == v for k, v in named.items()) for row in sample), sample
    assert md["unexpected_count"] >= 1 and md["expectations_failed"] >= 1
    assert "```sql" in md["failing_rows_sql"]

    # the run fails and nothing downstream of the table materializes: marts keep their last data
    assert not result.success
    assert not (materialized(result) & bad.downstream)
    if bad.downstream == DOWNSTREAM_OF_FACT:
        assert _mart_rows(warehouse_url) == marts_before

    # the history holds the failure, and its SQL finds the failing row
    (row,) = query(
        warehouse_url,
        """SELECT success, blocking, severity, run_id, failing_sample, unexpected_index_query,
                  unexpected_count
           FROM quality.check_evaluation WHERE asset_key = %s AND check_name = %s""",
        (bad.asset_key.to_user_string(), bad.check),
    )
    success, blocking, severity, run_id, stored_sample, sql, count = row
    assert (success, blocking, severity, run_id) == (False, True, "ERROR", result.run_id)
    assert stored_sample and count >= 1
    found = [
        r
        for statement in sql.split(";")
        if statement.strip() and "select" in statement.lower()
        for r in query(warehouse_url, statement)
    ]
    assert any(set(named.values()) <= set(r) for r in found), (named, found)
