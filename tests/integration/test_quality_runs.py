"""Checks run on their own (as from the UI), per mart partition, on the raw quarantine rate, and
at the start of the marts job, where the `gx_suite` checks of the published curated tables keep a
table that breaks its rules out of the marts (rows the audit holds back never get there)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest
from dagster import AssetKey, AssetSelection, DagsterInstance, Definitions, materialize

from latam_dagster.assets.curated import curated_assets
from latam_dagster.assets.marts import mart_assets
from latam_dagster.assets.raw import raw_asset_key, raw_assets
from latam_dagster.assets.reference import reference_assets
from latam_dagster.jobs import marts_job
from latam_dagster.quality.gx_checks import GX_SUITE_CHECK, asset_checks
from latam_dagster.resources import RabbitMQResource, WarehouseResource
from latam_dagster.sensors.mart_sensors import range_tags
from latam_dagster.transform.curated import update_all
from latam_dagster.transform.marts import pending_dates_at
from tests.conftest import query
from tests.integration.test_quality_checks import (
    evaluations,
    gx_resource,
    load_clean,
)
from tests.transform_helpers import write_raw

pytestmark = pytest.mark.integration

ROUTES = AssetKey(["marts", "route_daily_performance"])


def run_checks(url, tmp_path, assets, keys, **kwargs):
    """Only the checks of `keys`, no materialization: what "Execute checks" does in the UI."""
    return materialize(
        [*assets, *asset_checks],
        selection=AssetSelection.checks_for_assets(*keys),
        resources={
            "warehouse": WarehouseResource(url=url),
            "gx": gx_resource(url, tmp_path),
            "rabbitmq": RabbitMQResource(),
        },
        instance=DagsterInstance.ephemeral(),
        raise_on_error=False,
        **kwargs,
    )


def _busiest_date(url: str) -> date:
    return query(
        url,
        """SELECT flight_date FROM marts.route_daily_performance
           GROUP BY 1 ORDER BY sum(flights) DESC LIMIT 1""",
    )[0][0]


def test_mart_counts_that_disagree_with_fact_flight_fail_for_their_partition(
    warehouse_url, tmp_path
):
    load_clean(warehouse_url)
    day = _busiest_date(warehouse_url)
    (carrier, origin, destination) = query(
        warehouse_url,
        """UPDATE marts.route_daily_performance SET flights = flights + 3
           WHERE (flight_date, carrier, origin, destination) IN (
               SELECT flight_date, carrier, origin, destination
               FROM marts.route_daily_performance WHERE flight_date = %s LIMIT 1)
           RETURNING carrier, origin, destination""",
        (day,),
    )[0]

    result = run_checks(
        warehouse_url, tmp_path, mart_assets, [ROUTES], tags={"dagster/partition": str(day)}
    )

    assert result.get_asset_materialization_events() == []  # checks only
    evals = evaluations(result)
    check = evals[("marts/route_daily_performance", "route_counts_match_fact_flight")]
    assert not check.passed and check.blocking
    md = {k: v.value for k, v in check.metadata.items()}
    assert md["partition"] == day.isoformat()
    (row,) = md["failing_sample"]
    assert (row["carrier"], row["origin"], row["destination"]) == (carrier, origin, destination)
    assert row["mart_flights"] == row["fact_flights"] + 3
    # the other rules of the suite still pass
    assert all(e.passed for k, e in evals.items() if k[1] != "route_counts_match_fact_flight")


def test_dates_changed_since_the_mart_refresh_are_not_compared(warehouse_url, tmp_path):
    """A micro-batch between a mart refresh and its check must not make the check fail."""
    load_clean(warehouse_url)
    day = _busiest_date(warehouse_url)
    # a new flight for that day reaches fact_flight; the mart has not been refreshed yet
    _status_event(warehouse_url, day, flight_number=9999, status="scheduled")

    result = run_checks(
        warehouse_url, tmp_path, mart_assets, [ROUTES], tags={"dagster/partition": str(day)}
    )
    evals = evaluations(result)
    assert evals[("marts/route_daily_performance", "route_counts_match_fact_flight")].passed


def test_quarantine_rate_above_threshold_warns_without_blocking(
    warehouse_url, tmp_path, monkeypatch
):
    monkeypatch.setenv("LATAM_QUALITY_QUARANTINE_MAX_PCT", "5")
    load_clean(warehouse_url)
    (accepted,) = query(warehouse_url, "SELECT count(*) FROM raw.flight_events")[0]
    bad = accepted // 10 + 1  # about 9% of the queue's messages
    query(
        warehouse_url,
        """INSERT INTO raw.quarantine (queue, reason, body, body_sha256, body_bytes)
           SELECT 'latam.flights', 'not JSON', b, sha256(b), length(b)
           FROM (SELECT convert_to('garbage ' || i, 'UTF8') AS b
                 FROM generate_series(1, %s) AS i) AS s""",
        (bad,),
    )

    result = run_checks(
        warehouse_url,
        tmp_path,
        raw_assets,
        [raw_asset_key(f) for f in ("flights", "passengers", "positions")],
    )

    assert result.success  # a warning fails no step and blocks nothing
    evals = evaluations(result)
    flights = evals[("raw/flight_events", "quarantine_rate")]
    assert not flights.passed and not flights.blocking
    assert flights.severity.value == "WARN"
    observed = {k: v.value for k, v in flights.metadata.items()}["failing_sample"][0]
    assert observed["quarantined"] == bad and observed["accepted"] == accepted
    assert evals[("raw/passenger_events", "quarantine_rate")].passed
    assert evals[("raw/position_reports", "quarantine_rate")].passed


def _status_event(url: str, day: date, **payload) -> None:
    """A status event on the route of one of `day`'s flights (that flight's, unless `payload`
    says otherwise), written to raw and through the curated update."""
    (carrier, number, origin, destination) = query(
        url,
        """SELECT carrier, flight_number, origin, destination FROM curated.fact_flight
           WHERE flight_date = %s ORDER BY flight_key LIMIT 1""",
        (day,),
    )[0]
    event = {
        "message_id": str(uuid.uuid4()),
        "schema_version": 1,
        "event_type": "flight_status",
        "event_time": datetime.now(UTC).isoformat(),
        "source_system": "ops_control",
        "payload": {
            "carrier": carrier,
            "flight_number": number,
            "flight_date": day.isoformat(),
            "origin": origin,
            "destination": destination,
            "status": "boarding",
            **payload,
        },
    }
    write_raw(url, [event])
    update_all(url)


def _late_event(url: str, day: date, **payload) -> None:
    """A late status event for one of `day`'s flights: the date's mart partitions are pending
    afterwards."""
    _status_event(url, day, **payload)
    assert day in pending_dates_at(url)


def _run_marts_job(url: str, tmp_path, day: date):
    """The platform's marts job (the marts and their input checks) over `day`."""
    defs = Definitions(
        assets=[*reference_assets, *curated_assets, *mart_assets],
        asset_checks=asset_checks,
        jobs=[marts_job],
        resources={
            "warehouse": WarehouseResource(url=url),
            "gx": gx_resource(None, tmp_path),
        },
    )
    return defs.resolve_job_def("marts_job").execute_in_process(
        instance=DagsterInstance.ephemeral(), tags=range_tags(day, day), raise_on_error=False
    )


def _marts(url: str) -> list[tuple]:
    return query(url, "SELECT * FROM marts.route_daily_performance ORDER BY 1, 2, 3, 4")


def test_marts_job_starting_with_input_checks_keeps_the_last_good_marts(warehouse_url, tmp_path):
    """The marts refresh in runs of their own: a published table that breaks a table rule must
    not reach them there. The audit keeps such batches out of `curated.fact_flight`; a row written
    straight into the published table (a manual fix, a restore) is what the `gx_suite` input
    checks of the marts job stop."""
    load_clean(warehouse_url)
    marts_before = _marts(warehouse_url)
    day = _busiest_date(warehouse_url)
    _late_event(warehouse_url, day)
    # a second row for one of the day's flights under a zero-padded key, past the audit
    (key, carrier, number) = query(
        warehouse_url,
        """SELECT flight_key, carrier, flight_number FROM curated.fact_flight
           WHERE flight_date = %s ORDER BY flight_key LIMIT 1""",
        (day,),
    )[0]
    padded = key.replace(f"{carrier}{number}-", f"{carrier}{number:05d}-", 1)
    query(
        warehouse_url,
        """CREATE TEMP TABLE dup AS SELECT * FROM curated.fact_flight WHERE flight_key = %s;
           UPDATE dup SET flight_key = %s;
           INSERT INTO curated.fact_flight SELECT * FROM dup""",
        (key, padded),
    )

    result = _run_marts_job(warehouse_url, tmp_path, day)

    assert not result.success
    evals = evaluations(result)
    failed = {k for k, e in evals.items() if not e.passed}
    assert failed == {("curated/fact_flight", GX_SUITE_CHECK)}
    check = evals[("curated/fact_flight", GX_SUITE_CHECK)]
    assert check.blocking and check.severity.value == "ERROR"
    verdicts = {k: v.value for k, v in check.metadata.items()}["rules"]
    assert {rule for rule, v in verdicts.items() if not v["passed"]} == {"flight_keys_unique"}
    assert result.get_asset_materialization_events() == []
    assert _marts(warehouse_url) == marts_before
    assert day in pending_dates_at(warehouse_url)  # refreshed once the data is fixed


def test_marts_job_refreshes_without_the_flights_the_audit_holds_back(warehouse_url, tmp_path):
    """A flight held back by a row rule never reaches the published table: the input checks
    pass, and the marts refresh the date from the published flights."""
    load_clean(warehouse_url)
    day = _busiest_date(warehouse_url)
    (flights_before,) = query(
        warehouse_url,
        "SELECT sum(flights) FROM marts.route_daily_performance WHERE flight_date = %s",
        (day,),
    )[0]
    _late_event(warehouse_url, day, destination="QQQ")  # an airport no one knows
    (held,) = query(
        warehouse_url,
        "SELECT count(*) FROM quality.rejects WHERE rule = 'flight_airports_known'",
    )[0]
    assert held == 1

    result = _run_marts_job(warehouse_url, tmp_path, day)

    assert result.success
    evals = evaluations(result)
    assert {k for k in evals if k[0].startswith("curated/")} == {
        ("curated/fact_flight", GX_SUITE_CHECK),
        ("curated/flight_passenger_load", GX_SUITE_CHECK),
    }
    assert all(e.passed for e in evals.values())  # the marts' own checks too
    assert {e.asset_key for e in result.get_asset_materialization_events()} == {
        AssetKey(["marts", "route_daily_performance"]),
        AssetKey(["marts", "airport_daily_traffic"]),
    }
    assert day not in pending_dates_at(warehouse_url)
    (flights_after, published) = query(
        warehouse_url,
        """SELECT (SELECT sum(flights) FROM marts.route_daily_performance WHERE flight_date = %s),
                  (SELECT count(*) FROM curated.fact_flight WHERE flight_date = %s)""",
        (day, day),
    )[0]
    assert flights_after == flights_before - 1 == published
