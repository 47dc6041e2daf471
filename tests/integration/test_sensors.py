"""The queue sensor requests one drain run of the queues where messages wait, and keeps at most
LATAM_DRAIN_RUNS drain runs at a time."""

import threading
import time
from types import SimpleNamespace

import pytest
from dagster import (
    AssetCheckEvaluation,
    AssetCheckKey,
    AssetCheckResult,
    AssetKey,
    AssetMaterialization,
    DagsterRun,
    DagsterRunStatus,
    RunRequest,
    RunsFilter,
    SkipReason,
    asset,
    asset_check,
    build_sensor_context,
    instance_for_test,
    job,
    materialize,
    op,
)

from latam_dagster.jobs import DRAIN_JOB_NAME
from latam_dagster.quality.audit_checks import all_audit_check_keys
from latam_dagster.resources import RabbitMQResource
from latam_dagster.sensors import queue_sensors
from latam_dagster.sensors.queue_sensors import DRAIN_STEP, checks_due, queue_sensor
from tests.integration.ingest_helpers import publish_many, wait_until

pytestmark = pytest.mark.integration

FLIGHTS_RAW = AssetKey(["raw", "flight_events"])
POSITIONS_RAW = AssetKey(["raw", "position_reports"])


def _evaluate(instance, amqp_url, topology, definitions=None):
    resource = RabbitMQResource(amqp_url=amqp_url, prefix=topology.prefix)
    ctx = build_sensor_context(
        instance=instance, resources={"rabbitmq": resource}, definitions=definitions
    )
    return queue_sensor(ctx)


def _publish(amqp_url, topology, *routing_keys: str) -> None:
    """One message waiting per routing key given."""
    publish_many(amqp_url, topology, [(b"{}", routing_key) for routing_key in routing_keys])


def _drain_running(instance, status=DagsterRunStatus.STARTED) -> str:
    return instance.add_run(DagsterRun(job_name=DRAIN_JOB_NAME, status=status)).run_id


def test_empty_queue_skips(amqp_url, topology):
    with instance_for_test() as instance:
        result = _evaluate(instance, amqp_url, topology)
    assert isinstance(result, SkipReason)
    assert "no queue to drain" in result.skip_message
    assert f"{topology.queue('flights')} 0" in result.skip_message


def test_waiting_messages_request_a_keyed_drain_run(amqp_url, topology):
    _publish(amqp_url, topology, "flight.test", "flight.test", "flight.test")
    with instance_for_test() as instance:
        result = _evaluate(instance, amqp_url, topology)
    assert isinstance(result, RunRequest)
    assert result.run_key.startswith(f"{topology.prefix}:flights:")
    assert result.tags["latam/drain_queues"] == "flights"
    assert result.tags["latam/queue_depth"] == "flights=3"
    assert result.asset_selection == [FLIGHTS_RAW]  # only the queue with messages


def test_one_run_drains_every_queue_with_messages(amqp_url, topology):
    _publish(amqp_url, topology, "flight.test", "position.test", "position.test")
    with instance_for_test() as instance:
        result = _evaluate(instance, amqp_url, topology)
    assert isinstance(result, RunRequest)
    assert result.tags["latam/drain_queues"] == "flights,positions"
    assert result.tags["latam/queue_depth"] == "flights=1,positions=2"
    assert set(result.asset_selection) == {FLIGHTS_RAW, POSITIONS_RAW}


def test_a_second_drain_starts_up_while_one_runs_but_no_third(amqp_url, topology, monkeypatch):
    monkeypatch.setenv("LATAM_DRAIN_RUNS", "2")
    _publish(amqp_url, topology, "flight.test")
    with instance_for_test() as instance:
        _drain_running(instance)
        assert isinstance(_evaluate(instance, amqp_url, topology), RunRequest)
        _drain_running(instance, DagsterRunStatus.STARTING)
        result = _evaluate(instance, amqp_url, topology)
        assert isinstance(result, SkipReason)
        assert "2 drain run(s) already draining or about to" in result.skip_message
        assert f"{topology.queue('flights')} 1" in result.skip_message
        # finished runs do not count
        _drain_running(instance, DagsterRunStatus.SUCCESS)
        assert isinstance(_evaluate(instance, amqp_url, topology), SkipReason)


def test_one_drain_run_at_a_time_when_configured(amqp_url, topology, monkeypatch):
    monkeypatch.setenv("LATAM_DRAIN_RUNS", "1")
    _publish(amqp_url, topology, "flight.test")
    with instance_for_test() as instance:
        _drain_running(instance)
        result = _evaluate(instance, amqp_url, topology)
    assert isinstance(result, SkipReason)
    assert "1 drain run(s) already draining or about to" in result.skip_message


def test_runs_that_have_drained_do_not_hold_back_the_next_drain(amqp_url, topology, monkeypatch):
    """A run still updating curated tables or running checks is not waiting to drain."""
    monkeypatch.setenv("LATAM_DRAIN_RUNS", "1")
    _publish(amqp_url, topology, "flight.test")
    drain, curated_started, finish = threading.Event(), threading.Event(), threading.Event()

    # a real drain run, held at its drain step and then at its curated step
    @op(name=DRAIN_STEP)
    def drain_step() -> int:
        assert drain.wait(30)
        return 1

    @op
    def curated_step(_drained: int) -> None:
        curated_started.set()
        assert finish.wait(30)

    @job(name=DRAIN_JOB_NAME)
    def drain_job():
        curated_step(drain_step())

    with instance_for_test() as instance:
        outcome = []
        runner = threading.Thread(
            target=lambda: outcome.append(drain_job.execute_in_process(instance=instance))
        )
        runner.start()
        try:
            wait_until(
                lambda: instance.get_run_records(
                    RunsFilter(job_name=DRAIN_JOB_NAME, statuses=[DagsterRunStatus.STARTED])
                ),
                timeout=30,
            )
            assert isinstance(_evaluate(instance, amqp_url, topology), SkipReason)
            drain.set()  # the drain step ends; the run goes on with its curated step
            assert curated_started.wait(30)
            assert isinstance(_evaluate(instance, amqp_url, topology), RunRequest)
        finally:
            drain.set()
            finish.set()
            runner.join(30)
        assert outcome and outcome[0].success


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


def test_checks_are_due_when_never_run_old_or_failed(monkeypatch):
    later = SimpleNamespace(time=lambda: time.time() + 0.3)  # the sensor's clock, 0.3 s ahead
    with instance_for_test() as instance:
        ctx = build_sensor_context(instance=instance)
        key = AssetCheckKey(AssetKey("checked_table"), "rows_valid")
        assert checks_due(ctx, [key], 60)  # never evaluated
        _check_record(instance, passed=True)
        assert not checks_due(ctx, [key], 60)  # passed a moment ago
        assert checks_due(ctx, [key], 0)  # 0: every run checks
        with monkeypatch.context() as m:
            m.setattr(queue_sensors, "time", later)
            assert checks_due(ctx, [key], 0.2)  # older than the interval
            assert not checks_due(ctx, [key], 60)
        _check_record(instance, passed=False)
        assert checks_due(ctx, [key], 60)  # failed: every run checks until it passes


def test_drain_run_request_carries_its_audit_always_and_gx_checks_only_when_due(
    amqp_url, topology, monkeypatch
):
    from latam_dagster.definitions import defs

    monkeypatch.setenv("LATAM_DRAIN_CHECK_INTERVAL_SECONDS", "3600")
    _publish(amqp_url, topology, "flight.test")
    with instance_for_test() as instance:
        first = _evaluate(instance, amqp_url, topology, definitions=defs)
        assert isinstance(first, RunRequest)
        assert set(first.asset_selection) == {
            AssetKey(["raw", "flight_events"]),
            AssetKey(["curated", "fact_flight"]),
            AssetKey(["curated", "flight_passenger_load"]),
        }
        checked = {k.asset_key for k in first.asset_check_keys}
        assert checked == set(first.asset_selection)  # never evaluated: every table's checks
        assert first.tags["latam/checks"] == "yes"
        # the checks just ran and passed: the next drain of the same tables goes without them
        for key in first.asset_check_keys:
            instance.report_runless_asset_event(
                AssetCheckEvaluation(asset_key=key.asset_key, check_name=key.name, passed=True)
            )
        second = _evaluate(instance, amqp_url, topology, definitions=defs)
        assert isinstance(second, RunRequest)
        assert set(second.asset_selection) == set(first.asset_selection)
        # the audit of the batch is never skipped; the whole-table GX checks are, until due
        audit = all_audit_check_keys()
        assert set(second.asset_check_keys) == {k for k in first.asset_check_keys if k in audit}
        assert {k.name for k in second.asset_check_keys} >= {"reject_share", "flight_keys_unique"}
        assert "gx_suite" in {k.name for k in first.asset_check_keys}
        assert "gx_suite" not in {k.name for k in second.asset_check_keys}
        assert second.tags["latam/checks"] == "not due"


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
    monkeypatch.setenv("LATAM_DRAIN_RUNS", "2")
    with instance_for_test() as instance:
        _last_drain_stopped(instance, "time budget spent")
        # no drain running: nothing to take over, nothing waiting
        assert isinstance(_evaluate(instance, amqp_url, topology), SkipReason)
        _drain_running(instance)
        request = _evaluate(instance, amqp_url, topology)
        assert isinstance(request, RunRequest)
        assert request.tags["latam/reason"] == "flights: steady traffic"
        assert request.tags["latam/queue_depth"] == "flights=0"
        assert request.asset_selection == [FLIGHTS_RAW]
        # the last drain found the queue empty: traffic stopped, the chain ends
        _last_drain_stopped(instance, "queue empty")
        result = _evaluate(instance, amqp_url, topology)
        assert isinstance(result, SkipReason)
        assert "no queue to drain" in result.skip_message
