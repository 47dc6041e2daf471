"""Queue sensors request a drain when messages wait, and at most LATAM_DRAIN_RUNS_PER_QUEUE
runs per queue at a time."""

import time

import pytest
from dagster import (
    AssetCheckKey,
    AssetCheckResult,
    AssetKey,
    AssetMaterialization,
    DagsterRunStatus,
    RunRequest,
    SkipReason,
    asset,
    asset_check,
    build_sensor_context,
    instance_for_test,
    materialize,
)
from dagster._core.test_utils import create_run_for_test

from latam_dagster.ingest.publish import Publisher
from latam_dagster.resources import RabbitMQResource
from latam_dagster.sensors.queue_sensors import checks_due, queue_sensors

pytestmark = pytest.mark.integration

flights_sensor = next(s for s in queue_sensors if s.name == "flights_queue_sensor")


def _evaluate(instance, amqp_url, topology):
    resource = RabbitMQResource(amqp_url=amqp_url, prefix=topology.prefix)
    ctx = build_sensor_context(instance=instance, resources={"rabbitmq": resource})
    return flights_sensor(ctx)


def test_empty_queue_skips(amqp_url, topology):
    with instance_for_test() as instance:
        result = _evaluate(instance, amqp_url, topology)
    assert isinstance(result, SkipReason)
    assert "0 message(s) waiting" in result.skip_message


def test_waiting_messages_request_a_keyed_drain_run(amqp_url, topology):
    with Publisher(amqp_url, topology, declare_topology=False) as pub:
        for _ in range(3):
            pub.publish_body(b"{}", "flight.test")
    with instance_for_test() as instance:
        result = _evaluate(instance, amqp_url, topology)
    assert isinstance(result, RunRequest)
    assert result.run_key.startswith(f"{topology.queue('flights')}:")
    assert result.tags["latam/drain_queue"] == "flights"
    assert result.tags["latam/queue_depth"] == "3"


def test_a_second_drain_starts_up_while_one_runs_but_no_third(amqp_url, topology, monkeypatch):
    monkeypatch.setenv("LATAM_DRAIN_RUNS_PER_QUEUE", "2")
    with Publisher(amqp_url, topology, declare_topology=False) as pub:
        pub.publish_body(b"{}", "flight.test")
    with instance_for_test() as instance:
        create_run_for_test(instance, job_name="drain_flights_job", status=DagsterRunStatus.STARTED)
        assert isinstance(_evaluate(instance, amqp_url, topology), RunRequest)
        create_run_for_test(
            instance, job_name="drain_flights_job", status=DagsterRunStatus.STARTING
        )
        result = _evaluate(instance, amqp_url, topology)
        assert isinstance(result, SkipReason)
        assert "2 drain run(s) already queued or running" in result.skip_message
        # finished runs do not count
        create_run_for_test(instance, job_name="drain_flights_job", status=DagsterRunStatus.SUCCESS)
        assert isinstance(_evaluate(instance, amqp_url, topology), SkipReason)


def test_one_drain_run_per_queue_when_configured(amqp_url, topology, monkeypatch):
    monkeypatch.setenv("LATAM_DRAIN_RUNS_PER_QUEUE", "1")
    with Publisher(amqp_url, topology, declare_topology=False) as pub:
        pub.publish_body(b"{}", "flight.test")
    with instance_for_test() as instance:
        create_run_for_test(instance, job_name="drain_flights_job", status=DagsterRunStatus.STARTED)
        result = _evaluate(instance, amqp_url, topology)
    assert isinstance(result, SkipReason)
    assert "1 drain run(s) already queued or running" in result.skip_message


def test_broker_down_is_a_clear_skip(topology):
    with instance_for_test() as instance:
        result = _evaluate(instance, "amqp://guest:guest@127.0.0.1:1/%2F", topology)
    assert isinstance(result, SkipReason)
    assert "RabbitMQ is not reachable at amqp://guest:***@127.0.0.1:1" in result.skip_message


def _check_record(instance, passed: bool):
    """Evaluate one real asset check in `instance`; returns its key."""

    @asset(name="checked_table")
    def checked_table() -> None:
        return None

    @asset_check(asset=checked_table, name="rows_valid")
    def rows_valid() -> AssetCheckResult:
        return AssetCheckResult(passed=passed)

    assert materialize([checked_table, rows_valid], instance=instance, raise_on_error=False).success
    return AssetCheckKey(AssetKey("checked_table"), "rows_valid")


def test_checks_are_due_when_never_run_old_or_failed():
    with instance_for_test() as instance:
        ctx = build_sensor_context(instance=instance)
        key = AssetCheckKey(AssetKey("checked_table"), "rows_valid")
        assert checks_due(ctx, [key], 60)  # never evaluated
        _check_record(instance, passed=True)
        assert not checks_due(ctx, [key], 60)  # passed a moment ago
        assert checks_due(ctx, [key], 0)  # 0: every run checks
        time.sleep(0.3)
        assert checks_due(ctx, [key], 0.2)  # older than the interval
        _check_record(instance, passed=False)
        assert checks_due(ctx, [key], 60)  # failed: every run checks until it passes


def test_drain_run_request_carries_its_checks_only_when_due(amqp_url, topology, monkeypatch):
    from latam_dagster.definitions import defs

    monkeypatch.setenv("LATAM_DRAIN_CHECK_INTERVAL_SECONDS", "3600")
    with Publisher(amqp_url, topology, declare_topology=False) as pub:
        pub.publish_body(b"{}", "flight.test")
    resource = RabbitMQResource(amqp_url=amqp_url, prefix=topology.prefix)
    with instance_for_test() as instance:
        ctx = build_sensor_context(
            instance=instance, resources={"rabbitmq": resource}, definitions=defs
        )
        first = flights_sensor(ctx)
        assert isinstance(first, RunRequest)
        assert set(first.asset_selection) == {
            AssetKey(["raw", "flight_events"]),
            AssetKey(["curated", "fact_flight"]),
            AssetKey(["curated", "flight_passenger_load"]),
        }
        checked = {k.asset_key for k in first.asset_check_keys}
        assert checked == set(first.asset_selection)  # never evaluated: every table's checks
        assert first.tags["latam/checks"] == "yes"


def _last_drain_stopped(instance, reason: str) -> None:
    instance.report_runless_asset_event(
        AssetMaterialization(
            asset_key=AssetKey(["raw", "flight_events"]), metadata={"stop_reason": reason}
        )
    )


def test_next_drain_starts_up_during_steady_traffic_even_with_nothing_ready(
    amqp_url, topology, monkeypatch
):
    """A consuming drain leaves no ready messages; a budget-spent last drain means traffic."""
    monkeypatch.setenv("LATAM_DRAIN_RUNS_PER_QUEUE", "2")
    with instance_for_test() as instance:
        _last_drain_stopped(instance, "time budget spent")
        # no drain running: nothing to take over, nothing waiting
        assert isinstance(_evaluate(instance, amqp_url, topology), SkipReason)
        create_run_for_test(instance, job_name="drain_flights_job", status=DagsterRunStatus.STARTED)
        request = _evaluate(instance, amqp_url, topology)
        assert isinstance(request, RunRequest)
        assert request.tags["latam/reason"].startswith("steady traffic")
        assert request.tags["latam/queue_depth"] == "0"
        # the last drain found the queue empty: traffic stopped, the chain ends
        _last_drain_stopped(instance, "queue empty")
        result = _evaluate(instance, amqp_url, topology)
        assert isinstance(result, SkipReason)
        assert "0 message(s) waiting" in result.skip_message
