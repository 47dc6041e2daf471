"""Flight dates pending outside the mart partitions are reported wherever a person looks.

A replay of old history leaves flight dates before LATAM_PARTITION_START pending, and no marts run
ever covers them. The mart partitions sensor's tick log, `latam quality report`, `latam run-once`'s
warnings and the exporter's gauge must all say so (future dates separately), and stay silent
when every pending date has a partition.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import date, timedelta

import pytest
from click.testing import CliRunner
from dagster import (
    DagsterInstance,
    RunRequest,
    SkipReason,
    build_sensor_context,
    instance_for_test,
)

from latam_dagster.cli.quality import quality
from latam_dagster.pipeline import RunOnceReport, refresh_pending_marts
from latam_dagster.resources import WarehouseResource
from latam_dagster.sensors.mart_sensors import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    mart_partitions_sensor,
    partition_bounds,
)
from latam_dagster.transform.airports import load_dim_airport
from latam_dagster.transform.curated import update_all
from latam_dagster.transform.marts import pending_dates_at
from tests.integration.observability_support import by_label, warehouse_samples
from tests.transform_helpers import write_raw

pytestmark = pytest.mark.integration
GAUGE = "latam_mart_dates_outside_partitions"


@dataclass
class Pending:
    """The flight dates a test left pending, by where they fall against the partitions."""

    first: date
    old: list[date]
    inside: list[date]
    future: list[date]

    @property
    def old_message(self) -> str:
        return (
            f"{len(self.old)} flight date(s) wait outside the mart partitions "
            f"({self.old[0]}..{self.old[-1]}): set LATAM_PARTITION_START={self.old[0]} "
            "(or earlier) and reload the code location to bring them in"
        )


def _arrival(flight_date: date, number: int) -> dict:
    """A contract-valid arrival of flight LA<number> on `flight_date` (SCL -> LIM)."""
    day = flight_date.isoformat()
    return {
        "message_id": str(uuid.uuid4()),
        "schema_version": 1,
        "event_type": "flight_status",
        "event_time": f"{day}T23:50:00-03:00",
        "source_system": "ops_replay",
        "payload": {
            "carrier": "LA",
            "flight_number": number,
            "flight_date": day,
            "origin": "SCL",
            "destination": "LIM",
            "status": "arrived",
            "scheduled_arrival": f"{day}T20:00:00-05:00",
            "actual_arrival": f"{day}T20:10:00-05:00",
        },
    }


def _replay(url: str, old: int, inside: int, future: int) -> Pending:
    """Write arrivals for `old` dates just before the partitions, `inside` dates ending yesterday
    and `future` dates from the day after tomorrow, and update curated: all become pending."""
    first, last = partition_bounds()
    pending = Pending(
        first,
        old=[first - timedelta(days=n) for n in range(old, 0, -1)],
        inside=[last - timedelta(days=n) for n in range(inside, 0, -1)],
        future=[last + timedelta(days=n) for n in range(2, 2 + future)],
    )
    dates = [*pending.old, *pending.inside, *pending.future]
    write_raw(url, [_arrival(d, 9000 + i) for i, d in enumerate(dates)])
    load_dim_airport(url)
    update_all(url)
    assert set(pending_dates_at(url)) == set(dates)
    return pending


def _tick(url: str) -> tuple[object, list[tuple[str, str]]]:
    """Evaluate the sensor as the daemon does, with the tick's log key: (result, (level, message)
    of every line the UI shows in the tick's log)."""
    with instance_for_test() as instance:
        # a repository and sensor name (and an instance ref) give the context a tick log key,
        # so its log is captured where the UI reads it
        with build_sensor_context(
            instance=instance,
            instance_ref=instance.get_ref(),
            repository_name="__repository__",
            sensor_name="mart_partitions_sensor",
            resources={"warehouse": WarehouseResource(url=url)},
        ) as context:
            result = mart_partitions_sensor(context)
            log_key = context.log_key
        records = _tick_log_records(instance, log_key)
    return result, [(r["levelname"], r["msg"]) for r in records]


def _tick_log_records(instance: DagsterInstance, log_key) -> list[dict]:
    """The tick's log as the UI reads it: one JSON record a line in the captured stderr."""
    data = instance.compute_log_manager.get_log_data(log_key)
    text = data.stderr.decode() if data.stderr else ""
    return [json.loads(line, strict=False) for line in text.splitlines() if line.strip()]


def _gauge(url: str, first: date) -> dict[str, float]:
    return by_label(warehouse_samples(url, partition_start=first.isoformat()), GAUGE, "side")


@pytest.fixture
def report_env(report_env, monkeypatch):
    """The CLI's environment, with the partitions starting where the mart sensor's do."""
    monkeypatch.setenv("LATAM_PARTITION_START", partition_bounds()[0].isoformat())
    return report_env


def test_old_dates_are_named_with_the_setting_everywhere(report_env):
    url = report_env
    pending = _replay(url, old=12, inside=2, future=3)

    # the sensor requests the dates inside and its tick log says what waits outside
    result, logs = _tick(url)
    assert isinstance(result, list) and all(isinstance(r, RunRequest) for r in result)
    assert [
        (r.tags[ASSET_PARTITION_RANGE_START_TAG], r.tags[ASSET_PARTITION_RANGE_END_TAG])
        for r in result
    ] == [(pending.inside[0].isoformat(), pending.inside[-1].isoformat())]
    warnings = [m for level, m in logs if level == "WARNING"]
    assert len(warnings) == 1 and warnings[0].endswith(pending.old_message)
    assert "12 flight date(s)" in warnings[0]
    # future dates are told apart, as information: their partitions come by themselves
    infos = [m for level, m in logs if level == "INFO"]
    assert len(infos) == 1
    future = f"3 flight date(s) in the future wait for their partitions ({pending.future[0]}.."
    assert future in infos[0]
    assert "LATAM_PARTITION_START" not in infos[0]

    # the quality report prints the same line, and carries the counts in JSON
    runner = CliRunner()
    text = runner.invoke(quality, ["report"])
    assert text.exit_code == 0, text.output
    assert f"Marts: {pending.old_message}" in text.output.splitlines()
    data = json.loads(runner.invoke(quality, ["report", "--json"]).output)
    outside = data["marts_outside_partitions"]
    assert outside["before"] == {
        "dates": 12,
        "first": pending.old[0].isoformat(),
        "last": pending.old[-1].isoformat(),
    }
    assert outside["after"]["dates"] == 3
    assert outside["messages"][0] == pending.old_message

    # the exporter counts them by side
    assert _gauge(url, pending.first) == {"before": 12, "after": 3}


def test_run_once_warning_names_the_setting_to_change(report_env):
    url = report_env
    pending = _replay(url, old=4, inside=0, future=0)
    report = RunOnceReport(success=True)
    refresh_pending_marts(DagsterInstance.ephemeral(), report, "run-once")
    assert report.warnings == [
        f"4 flight date(s) wait outside the mart partitions ({pending.old[0]}..{pending.old[-1]}): "
        f"set LATAM_PARTITION_START={pending.old[0]} (or earlier) and run `latam run-once` again "
        "to bring them in"
    ]
    assert report.run_ids == []  # no partition, no run: the dates stay pending
    assert set(pending_dates_at(url)) == set(pending.old)


def test_only_old_dates_pending_is_the_tick_skip_reason(report_env):
    pending = _replay(report_env, old=5, inside=0, future=0)
    result, logs = _tick(report_env)
    assert isinstance(result, SkipReason)
    assert result.skip_message.endswith(pending.old_message)
    assert [level for level, _ in logs] == ["WARNING"]


def test_nothing_is_said_when_every_pending_date_has_a_partition(report_env):
    url = report_env
    pending = _replay(url, old=0, inside=3, future=0)

    result, logs = _tick(url)
    assert isinstance(result, list) and len(result) == 1
    assert logs == []

    text = CliRunner().invoke(quality, ["report"])
    assert text.exit_code == 0, text.output
    assert "Marts:" not in text.output and "outside the mart partitions" not in text.output
    data = json.loads(CliRunner().invoke(quality, ["report", "--json"]).output)
    assert data["marts_outside_partitions"]["messages"] == []
    assert data["marts_outside_partitions"]["before"]["dates"] == 0

    assert _gauge(url, pending.first) == {"before": 0, "after": 0}
