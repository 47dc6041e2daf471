"""A drain run with and without its checks, as the queue sensor requests them (checks only when
due): the same job, subset by asset check keys, against the real broker and warehouse."""

from __future__ import annotations

import pytest
from dagster import AssetKey, Definitions, instance_for_test

from latam_dagster.assets.curated import curated_assets
from latam_dagster.assets.raw import raw_assets
from latam_dagster.assets.reference import reference_assets
from latam_dagster.jobs import drain_job
from latam_dagster.quality.audit_checks import all_audit_check_keys
from latam_dagster.quality.gx_checks import asset_checks
from latam_dagster.resources import RabbitMQResource, WarehouseResource
from latam_dagster.transform.airports import load_dim_airport
from tests.conftest import query
from tests.integration.observability_support import publish, simulated, wait_for_depth
from tests.integration.test_quality_checks import gx_resource

pytestmark = pytest.mark.integration

FACT_FLIGHT = AssetKey(["curated", "fact_flight"])


def _drain_job(amqp_url, topology, warehouse_url, tmp_path):
    defs = Definitions(
        assets=[*raw_assets, *reference_assets, *curated_assets],
        asset_checks=asset_checks,
        jobs=[drain_job],
        resources={
            "rabbitmq": RabbitMQResource(amqp_url=amqp_url, prefix=topology.prefix),
            "warehouse": WarehouseResource(url=warehouse_url),
            "gx": gx_resource(warehouse_url, tmp_path),
        },
    )
    job = defs.resolve_job_def("drain_job")
    # what the queue sensor requests when only the flights queue has traffic
    assets = {
        AssetKey(["raw", "flight_events"]),
        FACT_FLIGHT,
        AssetKey(["curated", "flight_passenger_load"]),
    }
    checks = {k for k in job.asset_layer.asset_graph.asset_check_keys if k.asset_key in assets}
    return job, assets, checks


def _flights(amqp_url, topology, seed: int) -> int:
    bodies = [(b, rk) for b, rk in simulated(seed, 600) if rk.startswith("flight.")]
    published = publish(amqp_url, topology, bodies)
    wait_for_depth(amqp_url, topology, published)
    return published


def _evaluated(result) -> set[str]:
    return {e.check_name for e in result.get_asset_check_evaluations()}


def test_a_drain_run_without_gx_checks_drains_updates_and_audits_only(
    amqp_url, topology, warehouse_url, tmp_path
):
    load_dim_airport(warehouse_url)
    job, assets, checks = _drain_job(amqp_url, topology, warehouse_url, tmp_path)
    assert {k.asset_key for k in checks} == assets
    audit = all_audit_check_keys() & checks
    assert {k.asset_key for k in audit} == assets - {AssetKey(["raw", "flight_events"])}

    with instance_for_test() as instance:
        sent = _flights(amqp_url, topology, 3)
        light = job.get_subset(asset_selection=set(assets), asset_check_selection=audit)
        result = light.execute_in_process(instance=instance)
        assert result.success
        # the audit of the batch, and no GX, in this run
        assert _evaluated(result) == {k.name for k in audit}
        assert "gx_suite" not in _evaluated(result)
        materialized = {e.asset_key for e in result.get_asset_materialization_events()}
        assert materialized == set(assets)
        assert query(warehouse_url, "SELECT count(*) FROM raw.flight_events")[0][0] == sent
        assert query(warehouse_url, "SELECT count(*) FROM curated.fact_flight")[0][0] > 0

        _flights(amqp_url, topology, 4)
        full = job.get_subset(asset_selection=set(assets), asset_check_selection=set(checks))
        result = full.execute_in_process(instance=instance)
        assert result.success
        assert _evaluated(result) == {k.name for k in checks}
        assert all(e.passed for e in result.get_asset_check_evaluations())
