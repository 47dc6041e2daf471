"""Run retention on a real Dagster instance on Postgres, in a database of its own, configured by
the repository's dagster.yaml (so its `retention:` section parses against the installed Dagster).

Old successful runs go with their event logs and asset check executions; failed and canceled
runs stay for their longer window; a run newer than its window stays, and so does a run that has
not finished, however old. "Old" comes from an injected `now` in the future, not from a faked
clock.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from dagster import (
    AssetCheckKey,
    AssetCheckResult,
    AssetKey,
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    DefaultScheduleStatus,
    Failure,
    asset,
    asset_check,
    job,
    materialize,
    op,
)

from latam_dagster.db import ensure_database
from latam_dagster.instance_retention import instance_retention_job, purge_old_runs
from latam_dagster.settings import normalize_pg_url
from tests.conftest import ROOT

pytestmark = pytest.mark.integration

JOB_NAME = "retention_probe"
PROBE = AssetKey("retention_probe")
PROBE_CHECK = AssetCheckKey(PROBE, "probe_is_fine")


@asset(key=PROBE)
def probe() -> None:
    pass


@asset_check(asset=PROBE)
def probe_is_fine() -> AssetCheckResult:
    return AssetCheckResult(passed=True)


@op
def fail() -> None:
    raise Failure("failed on purpose")


@job(name=JOB_NAME)
def failing_job() -> None:
    fail()


@pytest.fixture
def instance(empty_db_url: str, tmp_path, monkeypatch) -> Iterator[DagsterInstance]:
    """A Dagster instance as dagster.yaml configures it, on a Postgres database of this test."""
    ensure_database(empty_db_url)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "infra" / "dagster" / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("LATAM_DAGSTER_PG_URL", normalize_pg_url(empty_db_url))
    with DagsterInstance.from_config(str(home)) as instance:
        yield instance


def _run(instance: DagsterInstance, status: DagsterRunStatus) -> str:
    """A run with an event log (executed) when it finished, a bare run row when it did not; a
    successful one evaluated an asset check."""
    if status == DagsterRunStatus.SUCCESS:
        return materialize([probe, probe_is_fine], instance=instance).run_id
    if status == DagsterRunStatus.FAILURE:
        return failing_job.execute_in_process(instance=instance, raise_on_error=False).run_id
    return instance.add_run(DagsterRun(job_name=JOB_NAME, status=status)).run_id


def _remaining(instance: DagsterInstance) -> set[str]:
    return {record.dagster_run.run_id for record in instance.get_run_records()}


def _events(instance: DagsterInstance, run_id: str) -> int:
    return len(instance.all_logs(run_id))


def _checked(instance: DagsterInstance) -> set[str]:
    """The runs with an execution of the probe's check."""
    history = instance.event_log_storage.get_asset_check_execution_history(PROBE_CHECK, limit=100)
    return {record.run_id for record in history}


def test_old_finished_runs_go_unfinished_and_recent_ones_stay(instance: DagsterInstance) -> None:
    assert instance.get_settings("retention")["sensor"]["purge_after_days"]["skipped"] == 1
    old = {
        status: _run(instance, status)
        for status in (
            DagsterRunStatus.SUCCESS,
            DagsterRunStatus.FAILURE,
            DagsterRunStatus.CANCELED,
            DagsterRunStatus.NOT_STARTED,
            DagsterRunStatus.STARTING,
            DagsterRunStatus.STARTED,
            DagsterRunStatus.CANCELING,
        )
    }
    # every run above was last updated before `boundary`, every run below after it
    time.sleep(0.1)
    boundary = datetime.now(UTC)
    time.sleep(0.1)
    new_success = _run(instance, DagsterRunStatus.SUCCESS)
    new_failure = _run(instance, DagsterRunStatus.FAILURE)
    everything = {*old.values(), new_success, new_failure}
    assert _remaining(instance) == everything
    assert _events(instance, old[DagsterRunStatus.SUCCESS]) > 0
    assert _checked(instance) == {old[DagsterRunStatus.SUCCESS], new_success}

    # windows of 0 keep everything, whatever `now` says
    far = boundary + timedelta(days=10_000)
    assert sum(purge_old_runs(instance, far, 0, 0).runs.values()) == 0
    assert _remaining(instance) == everything

    # a week later: only the old successful run is past its window (2 runs a query: paging)
    week = purge_old_runs(instance, boundary + timedelta(days=7), 7, 90, 2)
    assert week.runs == {"SUCCESS": 1, "FAILURE": 0, "CANCELED": 0}
    assert week.check_executions == 1
    assert _remaining(instance) == everything - {old[DagsterRunStatus.SUCCESS]}
    assert _events(instance, old[DagsterRunStatus.SUCCESS]) == 0
    assert _events(instance, new_success) > 0
    assert _checked(instance) == {new_success}

    # 90 days later: the old failed and canceled runs go too, and the new successful one; the new
    # failed run is still inside its window, and the unfinished runs are never deleted
    quarter = purge_old_runs(instance, boundary + timedelta(days=90), 7, 90, 2)
    assert quarter.runs == {"SUCCESS": 1, "FAILURE": 1, "CANCELED": 1}
    assert _checked(instance) == set()
    assert _remaining(instance) == {
        new_failure,
        old[DagsterRunStatus.NOT_STARTED],
        old[DagsterRunStatus.STARTING],
        old[DagsterRunStatus.STARTED],
        old[DagsterRunStatus.CANCELING],
    }
    assert _events(instance, old[DagsterRunStatus.FAILURE]) == 0
    assert _events(instance, new_failure) > 0

    with pytest.raises(ValueError, match="timezone"):
        purge_old_runs(instance, datetime.now(), 7, 90)  # noqa: DTZ005 (the naive time is the point)


def test_the_daily_job_deletes_by_the_settings_and_logs_the_counts(
    instance: DagsterInstance, monkeypatch
) -> None:
    from latam_dagster.definitions import defs

    schedule = defs.get_schedule_def("instance_retention_schedule")
    assert schedule.job_name == instance_retention_job.name == "instance_retention"
    assert schedule.cron_schedule == "17 3 * * *"
    assert schedule.default_status == DefaultScheduleStatus.RUNNING

    done = _run(instance, DagsterRunStatus.SUCCESS)
    running = _run(instance, DagsterRunStatus.STARTED)
    assert _remaining(instance) == {done, running}
    time.sleep(1.0)
    # successful runs are kept 0.5 s, failed ones for ever
    monkeypatch.setenv("LATAM_RUN_RETENTION_SUCCESS_DAYS", str(0.5 / 86400))
    monkeypatch.setenv("LATAM_RUN_RETENTION_FAILURE_DAYS", "0")
    result = instance_retention_job.execute_in_process(instance=instance)
    assert result.success
    # the retention run itself was in progress while it purged: it stays
    assert _remaining(instance) == {running, result.run_id}
    messages = [entry.user_message for entry in instance.all_logs(result.run_id)]
    # the deleted run's check execution went with it
    assert any(
        "deleted 1 run(s) with their event logs (success 1, failure 0, canceled 0) and 1 asset "
        "check execution(s)" in m
        for m in messages
    ), messages
    assert any("failed and canceled runs: kept for ever" in m for m in messages)
