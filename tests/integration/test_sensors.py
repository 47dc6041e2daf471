"""Queue sensors request a drain when messages wait, and only one per queue at a time."""

import pytest
from dagster import (
    DagsterRunStatus,
    RunRequest,
    SkipReason,
    build_sensor_context,
    instance_for_test,
)
from dagster._core.test_utils import create_run_for_test

from latam_dagster.ingest.publish import Publisher
from latam_dagster.resources import RabbitMQResource
from latam_dagster.sensors.queue_sensors import queue_sensors

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


def test_no_second_drain_while_one_is_running(amqp_url, topology):
    with Publisher(amqp_url, topology, declare_topology=False) as pub:
        pub.publish_body(b"{}", "flight.test")
    with instance_for_test() as instance:
        create_run_for_test(instance, job_name="drain_flights_job", status=DagsterRunStatus.STARTED)
        result = _evaluate(instance, amqp_url, topology)
    assert isinstance(result, SkipReason)
    assert "already queued or running" in result.skip_message


def test_broker_down_is_a_clear_skip(topology):
    with instance_for_test() as instance:
        result = _evaluate(instance, "amqp://guest:guest@127.0.0.1:1/%2F", topology)
    assert isinstance(result, SkipReason)
    assert "RabbitMQ is not reachable at amqp://guest:***@127.0.0.1:1" in result.skip_message
