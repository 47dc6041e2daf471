"""The curated and mart assets under Dagster, with real resources and a real Postgres.

`materialize` runs the assets themselves; the mart partitions sensor is evaluated with
`build_sensor_context` and its run requests executed as marts_job runs (input checks first);
`run_once` drains RabbitMQ and must leave the
marts current for every flight date its batch touched, including a late event for an old date.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from dagster import DagsterInstance, Definitions, build_sensor_context, materialize

from latam_dagster.assets.curated import curated_assets
from latam_dagster.assets.marts import mart_assets, mart_key
from latam_dagster.assets.reference import reference_assets
from latam_dagster.jobs import marts_job
from latam_dagster.pipeline import full_refresh, run_once
from latam_dagster.quality.gx_checks import GX_SUITE_CHECK, asset_checks
from latam_dagster.resources import WarehouseResource
from latam_dagster.sensors.mart_sensors import mart_partitions_sensor, range_tags
from latam_dagster.transform.marts import pending_dates_at
from tests.integration.ingest_helpers import publish_events
from tests.integration.test_curated_correctness import assert_matches_reference
from tests.integration.test_quality_checks import gx_resource
from tests.transform_helpers import chaos_events, deliver, fetch_rows, read_rejects, write_raw

pytestmark = pytest.mark.integration


def test_materialize_assets_then_sensor_refreshes_the_remaining_dates(warehouse_url, tmp_path):
    instance = DagsterInstance.ephemeral()
    resources = {"warehouse": WarehouseResource(url=warehouse_url)}
    events = deliver(chaos_events(seed=31, flights=40), seed=31)
    write_raw(warehouse_url, events)

    result = materialize(
        [*reference_assets, *curated_assets], resources=resources, instance=instance
    )
    assert result.success
    fact = result.asset_materializations_for_node("curated__fact_flight")[0]
    assert fact.metadata["changed_rows"].value > 0

    # one run for a range of five daily partitions (single-run backfill)
    today = datetime.now(UTC).date()
    start = today - timedelta(days=4)
    result = materialize(
        mart_assets, resources=resources, instance=instance, tags=range_tags(start, today)
    )
    assert result.success
    expected = {(start + timedelta(days=i)).isoformat() for i in range(5)}
    for mart in ("route_daily_performance", "airport_daily_traffic"):
        assert expected <= instance.get_materialized_partitions(mart_key(mart))

    # the old dates of the events are still pending: the sensor asks for exactly those
    pending = set(pending_dates_at(warehouse_url))
    assert pending == {date(2021, 3, 4), date(2023, 7, 19)} & _event_dates(events)
    context = build_sensor_context(instance=instance, resources=resources)
    requests = list(mart_partitions_sensor(context))
    assert {(r.tags["dagster/asset_partition_range_start"]) for r in requests} == {
        d.isoformat() for d in pending
    }
    # these chaos events send a few flights to an unknown airport on purpose: the audit holds
    # them back, so the published tables pass the input checks of marts_job and the marts refresh
    assert {r for (_t, _k, r) in read_rejects(warehouse_url)} == {"flight_airports_known"}
    defs = Definitions(
        assets=[*reference_assets, *curated_assets, *mart_assets],
        asset_checks=asset_checks,
        jobs=[marts_job],
        resources={**resources, "gx": gx_resource(None, tmp_path)},
    )
    for request in requests:
        run = defs.resolve_job_def(request.job_name or marts_job.name).execute_in_process(
            instance=instance, tags=request.tags
        )
        assert run.success
        checks = {
            (e.asset_key.to_user_string(), e.check_name): e.passed
            for e in run.get_asset_check_evaluations()
        }
        assert checks[("curated/fact_flight", GX_SUITE_CHECK)]
        assert checks[("curated/flight_passenger_load", GX_SUITE_CHECK)]
    assert pending_dates_at(warehouse_url) == {}
    assert_matches_reference(warehouse_url, events)


def _event_dates(events: list[dict]) -> set[date]:
    return {
        date.fromisoformat(e["payload"]["flight_date"])
        for e in events
        if "flight_date" in e["payload"]
    }


def test_run_once_covers_the_chain_and_a_late_event_for_an_old_date(
    warehouse_url, amqp_url, topology, monkeypatch
):
    monkeypatch.setenv("LATAM_WAREHOUSE_URL", warehouse_url)
    monkeypatch.setenv("LATAM_AMQP_URL", amqp_url)
    monkeypatch.setenv("LATAM_TOPOLOGY_PREFIX", topology.prefix)
    monkeypatch.setenv("LATAM_DRAIN_IDLE_SECONDS", "0.2")
    instance = DagsterInstance.ephemeral()
    # a few flights to an unknown airport: the audit holds them back, the run-once succeeds
    events = deliver(chaos_events(seed=47, flights=25), seed=47)
    publish_events(amqp_url, topology, events)

    report = run_once(instance=instance)
    assert report.success, report.failures
    assert {r for (_t, _k, r) in read_rejects(warehouse_url)} == {"flight_airports_known"}
    refreshed = {s["asset"] for s in report.steps if s.get("partition")}
    assert refreshed == {"marts/route_daily_performance", "marts/airport_daily_traffic"}
    assert pending_dates_at(warehouse_url) == {}
    assert_matches_reference(warehouse_url, events)

    # years later, a source replays the arrival of a flight of 2021-03-04
    late = {
        "message_id": "5b2a4c1e-0d7e-4a51-9a0c-2f0f3c1f7a11",
        "schema_version": 1,
        "event_type": "flight_status",
        "event_time": "2021-03-04T23:50:00-03:00",
        "source_system": "ops_replay",
        "payload": {
            "carrier": "LA",
            "flight_number": 9001,
            "flight_date": "2021-03-04",
            "origin": "SCL",
            "destination": "LIM",
            "status": "arrived",
            "scheduled_arrival": "2021-03-04T20:00:00-05:00",
            "actual_arrival": "2021-03-04T20:10:00-05:00",
        },
    }
    publish_events(amqp_url, topology, [late])
    report = run_once(instance=instance)
    assert report.success, report.failures
    partitions = {s.get("partition") for s in report.steps if s.get("partition")}
    assert partitions == {"2021-03-04"}
    _, rows = fetch_rows(
        warehouse_url,
        "SELECT arrived, on_time_arrivals FROM marts.route_daily_performance"
        " WHERE flight_date = '2021-03-04' AND carrier = 'LA' AND origin = 'SCL'"
        " AND destination = 'LIM'",
    )
    assert rows and rows[0][0] >= 1 and rows[0][1] >= 1
    assert_matches_reference(warehouse_url, [*events, late])

    # the documented full refresh rebuilds the same tables and every mart partition
    report = full_refresh(instance=instance)
    assert report.success, report.failures
    refreshed_dates = {s["partition"] for s in report.steps if s.get("partition")}
    assert refreshed_dates >= {"2021-03-04", datetime.now(UTC).date().isoformat()}
    assert pending_dates_at(warehouse_url) == {}
    assert_matches_reference(warehouse_url, [*events, late])
