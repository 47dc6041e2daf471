"""The data-quality checks on a real warehouse: clean data passes, each class of bad data is caught.

Clean simulated events go through the real curated and mart SQL. Then one kind of bad data is
injected and the curated and mart assets run again with every check. The audited curated tables
are written to `staging.<table>`, audited and published to `curated.<table>` in one transaction:

- bad data a **row rule** catches (an unknown airport, an arrival before its departure, a negative
  seat capacity, a latitude of 123) is held back: the run succeeds, the audit check of the rule
  fails with WARN and names the held rows (in `quality.rejects`, with SQL that lists them), the row
  stays in `staging.<table>` but not in `curated.<table>`, and everything downstream materializes
  from the other rows; Great Expectations finds the published table clean;
- bad data a **table rule** catches (two keys for one flight) blocks the batch: the run fails, the
  audit checks say why, nothing of the batch is published, nothing downstream materializes and the
  marts keep their last good data.

Bad data enters through raw events where the contract lets it through. Where it does not, it
enters where the pipeline itself would produce it: a row of `staging.<table>` that a later event
brings into an audited batch, or a faulty line in the table's SQL.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance, ExecuteInProcessResult, asset, materialize

from latam_dagster.assets.curated import curated_assets
from latam_dagster.assets.marts import daily_partitions, mart_assets
from latam_dagster.assets.reference import reference_assets
from latam_dagster.quality.audit import REJECT_SHARE_CHECK
from latam_dagster.quality.audit_checks import all_audit_check_keys
from latam_dagster.quality.gx_checks import GX_SUITE_CHECK, asset_checks
from latam_dagster.quality.gx_resource import GreatExpectationsResource
from latam_dagster.resources import WarehouseResource
from latam_dagster.sensors.mart_sensors import range_tags
from latam_dagster.simulator.generator import generate
from latam_dagster.tables import REGISTRY, Table
from latam_dagster.transform.airports import load_dim_airport
from latam_dagster.transform.curated import TABLES, update_all
from latam_dagster.transform.marts import refresh_pending
from tests.conftest import query
from tests.transform_helpers import assert_valid, write_raw

pytestmark = pytest.mark.integration

FACT = AssetKey(["curated", "fact_flight"])
LOAD = AssetKey(["curated", "flight_passenger_load"])
POSITIONS = AssetKey(["curated", "aircraft_position_latest"])
MARTS = {
    AssetKey(["marts", "route_daily_performance"]),
    AssetKey(["marts", "airport_daily_traffic"]),
}
DOWNSTREAM_OF_FACT = {LOAD, *MARTS}
SNAPSHOT = AssetKey(["test", "positions_snapshot"])
AUDITED = {f"curated/{name}" for name, t in TABLES.items() if t.audit}


@asset(deps=[POSITIONS], key=SNAPSHOT)
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


def metadata(evaluation) -> dict[str, object]:
    return {k: v.value for k, v in evaluation.metadata.items()}


def sql_of(markdown: str) -> str:
    """The SQL of a `failing_rows_sql` metadata entry (a fenced block)."""
    return markdown.strip().removeprefix("```sql").removesuffix("```").strip()


def audit_checks_of(asset_key: str) -> set[tuple[str, str]]:
    return {
        (k.asset_key.to_user_string(), k.name)
        for k in all_audit_check_keys()
        if k.asset_key.to_user_string() == asset_key
    }


def gx_history(url: str, run_id: str) -> dict[tuple[str, str], bool]:
    """(asset, rule) -> success of the GX validations of one run, from quality.check_evaluation."""
    rows = query(
        url,
        "SELECT asset_key, check_name, success FROM quality.check_evaluation WHERE run_id = %s",
        (run_id,),
    )
    return {(a, c): ok for a, c, ok in rows}


def test_clean_data_passes_every_check(warehouse_url, tmp_path):
    write_raw(warehouse_url, simulated_events())
    result = run_pipeline(
        warehouse_url, tmp_path, [*reference_assets, *curated_assets, *mart_assets]
    )
    assert result.success
    evals = evaluations(result)
    failed = {k: e.description for k, e in evals.items() if not e.passed}
    assert failed == {}

    # every check is evaluated: the audit's (one per rule and the reject share, for each audited
    # table), one `gx_suite` per audited table and one GX check per rule of the other tables
    gx_checks = {
        (s.asset_key.to_user_string(), s.name)
        for checks in asset_checks
        for s in checks.check_specs
        if s.asset_key.path[0] != "raw"  # raw assets are not part of this run
    }
    audit = {(k.asset_key.to_user_string(), k.name) for k in all_audit_check_keys()}
    assert set(evals) == gx_checks | audit
    assert {(a, c) for a, c in gx_checks if a in AUDITED} == {(a, GX_SUITE_CHECK) for a in AUDITED}
    assert {a for a, c in audit if c == REJECT_SHARE_CHECK} == AUDITED

    # the audit checks belong to the materialization of their asset in this run
    materializations = {
        e.asset_key.to_user_string() for e in result.get_asset_materialization_events()
    }
    for key in audit:
        target = evals[key].target_materialization_data
        assert target is not None and target.run_id == result.run_id, key
        assert key[0] in materializations

    # each audited table audited one batch in the run, held nothing back and published it all
    batches = query(
        warehouse_url,
        """SELECT table_name, audited_rows, published_rows, held_rows, blocked
           FROM quality.audit_batch WHERE run_id = %s""",
        (result.run_id,),
    )
    assert {t for t, *_ in batches} == {f"curated.{a.split('/')[1]}" for a in AUDITED}
    assert all(n > 0 and pub == n and held == 0 and not b for _t, n, pub, held, b in batches)
    assert _count(warehouse_url, "quality.rejects") == 0
    for name in ("fact_flight", "flight_passenger_load", "aircraft_position_latest"):
        assert _count(warehouse_url, f"staging.{name}") == _count(warehouse_url, f"curated.{name}")

    # Great Expectations validated every rule of every suite on the whole tables: an audited
    # table's `gx_suite` names each rule's verdict
    suites = {s.asset_key_str: s for s in REGISTRY.suites()}
    for asset_key in AUDITED:
        verdicts = metadata(evals[(asset_key, GX_SUITE_CHECK)])["rules"]
        assert set(verdicts) == {r.name for r in suites[asset_key].rules}, asset_key
        assert all(v["passed"] for v in verdicts.values())

    # GX's history holds every rule of every suite it validated (for an audited table, its
    # `gx_suite` validation records one row per rule), with the run id and the marts' range
    rows = query(
        warehouse_url,
        """SELECT asset_key, check_name, success, run_id, partition_key
           FROM quality.check_evaluation""",
    )
    rules = {(a, r.name) for a, s in suites.items() if not a.startswith("raw/") for r in s.rules}
    assert {(a, c) for a, c, *_ in rows} == rules
    assert all(ok and run == result.run_id for _a, _c, ok, run, _p in rows)
    start, end = mart_range(warehouse_url)
    assert {p for a, _c, _ok, _r, p in rows if a.startswith("marts/")} == {
        f"{start.isoformat()}...{end.isoformat()}"
    }

    # Data Docs: an index and a page per validation
    assert (tmp_path / "data_docs" / "index.html").exists()
    pages = query(warehouse_url, "SELECT data_docs_page FROM quality.validation")
    assert pages and all((tmp_path / "data_docs" / p).exists() for (p,) in pages)


def _count(url: str, table: str, where: str = "TRUE", params: tuple = ()) -> int:
    return query(url, f"SELECT count(*) FROM {table} WHERE {where}", params)[0][0]


# -- bad data ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Injected:
    """The row the bad data must hold back: its key and values its observation must show."""

    key: str
    observed: dict[str, object] = field(default_factory=dict)


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


def _through_raw(url: str, events: list[dict]) -> None:
    """Events the contract accepts, written to raw as the drain writes them."""
    assert_valid(events)
    write_raw(url, events)


def _clone_staging_row(url: str, table: str, key_column: str, key: str, **values: object) -> None:
    """Copy one row of `staging.<table>` under new values, as a faulty computation would leave it.

    The row is not audited by itself: it is audited (and published or held back) when a later
    batch recomputes it or names its key.
    """
    columns = [
        c
        for (c,) in query(
            url,
            """SELECT column_name FROM information_schema.columns
               WHERE table_schema = 'staging' AND table_name = %s ORDER BY ordinal_position""",
            (table,),
        )
    ]
    select = ", ".join(f"%({c})s" if c in values else c for c in columns)
    query(
        url,
        f"INSERT INTO staging.{table} ({', '.join(columns)}) "
        f"SELECT {select} FROM staging.{table} WHERE {key_column} = %(key)s",
        {**values, "key": key},
    )


def _faulty_sql(monkeypatch, table: str, correct: str, faulty: str) -> None:
    """The curated SQL of `table` with one faulty line, for the runs of this test only."""
    real = Table.sql

    def load(declared: Table) -> str:
        sql = real(declared)
        if declared.qualified != f"curated.{table}":
            return sql
        assert sql.count(correct) == 1, f"{correct!r} is not in {table}.sql once"
        return sql.replace(correct, faulty)

    monkeypatch.setattr(Table, "sql", load)


def inject_unknown_airport(url: str, _monkeypatch) -> Injected:
    """A source reports a destination that no airport has: through raw, as the drain would."""
    victim = _victim_flight(url)
    later = datetime.now(UTC) + timedelta(days=1)
    _through_raw(url, [_flight_event(victim, later, destination="QQQ")])
    return Injected(victim[0], {"destination": "QQQ"})


def inject_arrival_before_departure(url: str, _monkeypatch) -> Injected:
    """A schedule update whose arrival precedes its departure: through raw."""
    victim = _victim_flight(url)
    dep = victim[5]
    later = datetime.now(UTC) + timedelta(days=1)
    (dest,) = query(
        url, "SELECT destination FROM curated.fact_flight WHERE flight_key = %s", (victim[0],)
    )[0]
    event = _flight_event(
        victim,
        later,
        destination=dest,
        scheduled_departure=dep.isoformat(),
        scheduled_arrival=(dep - timedelta(hours=2)).isoformat(),
    )
    _through_raw(url, [event])
    return Injected(victim[0])


def inject_negative_seat_capacity(url: str, monkeypatch) -> Injected:
    """The contract rejects it at the door, so it can only come from a faulty transformation: the
    flight's next update computes a negative capacity (and so does its passenger load)."""
    victim = _victim_flight(url)
    fk = victim[0]
    _faulty_sql(
        monkeypatch,
        "fact_flight",
        "f.tail_number, f.seat_capacity,",
        f"f.tail_number, CASE WHEN f.flight_key = '{fk}' THEN -180 ELSE f.seat_capacity END,",
    )
    (dest,) = query(
        url, "SELECT destination FROM curated.fact_flight WHERE flight_key = %s", (fk,)
    )[0]
    later = datetime.now(UTC) + timedelta(days=1)
    _through_raw(url, [_flight_event(victim, later, destination=dest)])
    return Injected(fk, {"seat_capacity": -180})


def inject_latitude_123(url: str, _monkeypatch) -> Injected:
    """The contract rejects it at the door: a faulty computation left it in staging for an
    aircraft, and a late report naming the aircraft's flight brings the row into a batch (the
    merge keeps the later position, the one in staging)."""
    (tail, seen) = query(
        url,
        """SELECT tail_number, event_time FROM staging.aircraft_position_latest
           ORDER BY tail_number LIMIT 1""",
    )[0]
    _clone_staging_row(
        url,
        "aircraft_position_latest",
        "tail_number",
        tail,
        tail_number="CC-QA123",
        latitude=123.0,
        flight_key=None,
        flight_key_event_time=None,
        flight_key_message_id=None,
    )
    _fk, carrier, number, day, origin, _dep = _victim_flight(url)
    report = {
        "message_id": str(uuid.uuid4()),
        "schema_version": 1,
        "event_type": "position_report",
        "event_time": (seen - timedelta(hours=1)).isoformat(),
        "source_system": "adsb_feed_2",
        "payload": {
            "tail_number": "CC-QA123",
            "latitude": -33.39,
            "longitude": -70.79,
            "carrier": carrier,
            "flight_number": number,
            "flight_date": day.isoformat(),
            "origin": origin,
        },
    }
    _through_raw(url, [report])
    return Injected("CC-QA123", {"latitude": 123.0})


@dataclass(frozen=True)
class RowFault:
    """Bad data a row rule holds back: how to inject it, the check that names it, what else."""

    name: str
    table: str
    check: str
    inject: Callable[[str, pytest.MonkeyPatch], Injected]
    downstream: set[AssetKey]
    also_failing: frozenset[tuple[str, str]] = frozenset()
    """Other audit checks holding back the same key (a table computed from the bad row)."""

    @property
    def asset(self) -> str:
        return f"curated/{self.table}"


ROW_FAULTS = [
    RowFault(
        "unknown_airport",
        "fact_flight",
        "flight_airports_known",
        inject_unknown_airport,
        DOWNSTREAM_OF_FACT,
    ),
    RowFault(
        "arrival_before_departure",
        "fact_flight",
        "flight_schedule_ordered",
        inject_arrival_before_departure,
        DOWNSTREAM_OF_FACT,
    ),
    RowFault(
        "negative_seat_capacity",
        "fact_flight",
        "flight_seat_capacity_valid",
        inject_negative_seat_capacity,
        DOWNSTREAM_OF_FACT,
        frozenset({("curated/flight_passenger_load", "load_factor_plausible")}),
    ),
    RowFault(
        "latitude_123",
        "aircraft_position_latest",
        "position_coordinates_in_range",
        inject_latitude_123,
        {SNAPSHOT},
    ),
]


def _mart_rows(url: str) -> list[tuple]:
    return query(url, "SELECT * FROM marts.route_daily_performance ORDER BY 1, 2, 3, 4")


def _mart_flights(url: str, day: date) -> int:
    (n,) = query(
        url,
        "SELECT coalesce(sum(flights), 0) FROM marts.route_daily_performance WHERE flight_date = %s",
        (day,),
    )[0]
    return int(n)


@pytest.mark.parametrize("fault", ROW_FAULTS, ids=lambda f: f.name)
def test_rows_failing_a_row_rule_are_held_back_and_downstream_proceeds(
    warehouse_url, tmp_path, monkeypatch, fault: RowFault
):
    load_clean(warehouse_url)
    day = _victim_flight(warehouse_url)[3]
    flights_before = _mart_flights(warehouse_url, day)
    injected = fault.inject(warehouse_url, monkeypatch)
    where = f"{TABLES[fault.table].audit.key} = %s"
    was_published = _count(warehouse_url, f"curated.{fault.table}", where, (injected.key,))

    result = run_pipeline(
        warehouse_url, tmp_path, [*curated_assets, *mart_assets, positions_snapshot]
    )

    # held-back rows stop nothing: the run succeeds, everything downstream materializes
    assert result.success
    assert fault.downstream <= materialized(result)

    # the audit check of the rule, and only it (with the checks of the tables computed from the
    # row), fails with WARN; the `gx_suite` checks find the published tables clean
    evals = evaluations(result)
    key = (fault.asset, fault.check)
    failed = {k for k, e in evals.items() if not e.passed}
    assert failed == {key} | fault.also_failing
    evaluation = evals[key]
    assert not evaluation.blocking and evaluation.severity.value == "WARN"
    assert evals[(fault.asset, REJECT_SHARE_CHECK)].passed
    assert evaluation.target_materialization_data.run_id == result.run_id

    # the check names the rows and gives the SQL that lists every row it holds back
    md = metadata(evaluation)
    assert md["failing_rows"] == 1 and md["held_back_in_table"] == 1
    assert md["expectations_failed"] >= 1
    held = query(warehouse_url, sql_of(md["failing_rows_sql"]))
    assert [r[0] for r in held] == [injected.key]
    observed, run_id = held[0][2], held[0][5]
    assert run_id == result.run_id
    assert all(observed.get(c) == v for c, v in injected.observed.items()), observed

    # the row waits in quality.rejects and in staging, and is not published (any more)
    rejects = query(
        warehouse_url,
        "SELECT table_name, rule, run_id FROM quality.rejects WHERE row_key = %s",
        (injected.key,),
    )
    assert (f"curated.{fault.table}", fault.check, result.run_id) in rejects
    assert _count(warehouse_url, f"staging.{fault.table}", where, (injected.key,)) == 1
    assert _count(warehouse_url, f"curated.{fault.table}", where, (injected.key,)) == 0
    (batch,) = query(
        warehouse_url,
        """SELECT held_rows, blocked, rule_counts ->> %s
           FROM quality.audit_batch WHERE table_name = %s AND run_id = %s""",
        (fault.check, f"curated.{fault.table}", result.run_id),
    )
    assert batch == (1, False, "1")
    (materialization,) = [
        e.materialization
        for e in result.get_asset_materialization_events()
        if e.asset_key.to_user_string() == fault.asset
    ]
    md = {k: v.value for k, v in materialization.metadata.items()}
    assert (md["held_back_rows"], md["withdrawn_rows"]) == (1, was_published)

    # the marts are refreshed from the published rows: a withdrawn flight no longer counts
    if fault.downstream == DOWNSTREAM_OF_FACT:
        assert _mart_flights(warehouse_url, day) == flights_before - 1
        assert _mart_flights(warehouse_url, day) == _count(
            warehouse_url, "curated.fact_flight", "flight_date = %s", (day,)
        )

    # Great Expectations finds the published table clean: the rule holds on it, in the `gx_suite`
    # evaluation and in the history
    suite_check = evals[(fault.asset, GX_SUITE_CHECK)]
    assert suite_check.passed
    assert metadata(suite_check)["rules"][fault.check]["passed"] is True
    assert gx_history(warehouse_url, result.run_id)[(fault.asset, fault.check)] is True


def _fact_watermarks(url: str) -> list[tuple]:
    return query(
        url,
        """SELECT source, xid::text FROM curated.watermarks
           WHERE consumer = 'curated.fact_flight' ORDER BY source""",
    )


def inject_duplicate_key(url: str) -> tuple[str, str]:
    """A second row for a flight under a zero-padded key, as a key-building bug would compute it,
    then an event for that flight: the batch recomputes the flight, and staging holds two rows with
    its carrier, number, date and origin."""
    victim = _victim_flight(url)
    fk, carrier, number, *_ = victim
    padded = fk.replace(f"{carrier}{number}-", f"{carrier}{number:05d}-", 1)
    _clone_staging_row(url, "fact_flight", "flight_key", fk, flight_key=padded)
    (dest,) = query(
        url, "SELECT destination FROM curated.fact_flight WHERE flight_key = %s", (fk,)
    )[0]
    later = datetime.now(UTC) + timedelta(days=1)
    _through_raw(url, [_flight_event(victim, later, destination=dest, status="boarding")])
    return fk, padded


def test_a_failing_table_rule_blocks_the_batch_and_everything_downstream(warehouse_url, tmp_path):
    load_clean(warehouse_url)
    marts_before = _mart_rows(warehouse_url)
    fact_before = query(warehouse_url, "SELECT * FROM curated.fact_flight ORDER BY flight_key")
    marks_before = _fact_watermarks(warehouse_url)
    victim, padded = inject_duplicate_key(warehouse_url)

    result = run_pipeline(
        warehouse_url, tmp_path, [*curated_assets, *mart_assets, positions_snapshot]
    )

    # the run fails; the audit checks of the refused batch say why
    assert not result.success
    evals = evaluations(result)
    failed = {k for k, e in evals.items() if not e.passed}
    assert failed == {("curated/fact_flight", "flight_keys_unique")}
    unique = evals[("curated/fact_flight", "flight_keys_unique")]
    assert unique.blocking and unique.severity.value == "ERROR"
    md = metadata(unique)
    compound = "ExpectCompoundColumnsToBeUnique(carrier, flight_number, flight_date, origin)"
    by_expectation = md["failing_rows_by_expectation"]
    assert by_expectation[compound] >= 1 and md["failing_rows"] == by_expectation[compound]
    assert sum(by_expectation.values()) == by_expectation[compound]
    share = metadata(evals[("curated/fact_flight", REJECT_SHARE_CHECK)])
    assert share["blocked"] is True and share["held_back_rows"] == 0
    # every audit check of the table was evaluated, for the failed step
    assert audit_checks_of("curated/fact_flight") <= set(evals)

    # nothing downstream of the table materializes; what does not depend on it still does
    done = materialized(result)
    assert FACT not in done and not (done & DOWNSTREAM_OF_FACT)
    assert {POSITIONS, SNAPSHOT} <= done
    assert ("curated/fact_flight", GX_SUITE_CHECK) not in evals  # skipped with its asset

    # nothing of the batch is published: curated, marts and the watermark are as they were
    assert query(warehouse_url, "SELECT * FROM curated.fact_flight ORDER BY flight_key") == (
        fact_before
    )
    assert _mart_rows(warehouse_url) == marts_before
    assert _fact_watermarks(warehouse_url) == marks_before
    assert _count(warehouse_url, "staging.fact_flight", "flight_key = %s", (padded,)) == 1
    assert _count(warehouse_url, "curated.fact_flight", "flight_key = %s", (padded,)) == 0
    assert _count(warehouse_url, "quality.rejects") == 0

    # the refused batch is on record, with the reason
    (row,) = query(
        warehouse_url,
        """SELECT blocked, reason, published_rows, rule_counts ->> 'flight_keys_unique'
           FROM quality.audit_batch WHERE table_name = 'curated.fact_flight' AND run_id = %s""",
        (result.run_id,),
    )
    blocked, reason, published, count = row
    assert blocked and "flight_keys_unique" in reason and published == 0
    assert int(count) == md["failing_rows"]

    # the SQL in the check lists the rows that broke the rule: the flight's two rows, which are in
    # staging only (the batch was refused)
    found = {
        r[0]
        for statement in sql_of(md["failing_rows_sql"]).split(";")
        if statement.strip()
        for r in query(warehouse_url, statement)
    }
    assert {victim, padded} <= found, md["failing_rows_sql"]
