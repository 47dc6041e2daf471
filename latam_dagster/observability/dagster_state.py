"""Dagster instance metrics: runs, drains, materializations and data-quality check results.

Short-lived runs leave their facts in the instance (run status, materialization metadata, asset
check evaluations); this collector reads them incrementally (by storage id or update time), so a
collection only touches what happened since the previous one. On start it reads the history once,
so the counters are totals since the instance began, not since the exporter did.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from latam_dagster.ingest.topology import QUEUES
from latam_dagster.observability.families import Families, per_key

log = logging.getLogger(__name__)

# the queues a drain run drained, comma-separated (latam_dagster.jobs.DRAIN_TAG)
DRAIN_TAG = "latam/drain_queues"
RUN_STATES = ("success", "failure", "canceled")
PAGE = 1000
# metadata keys under which a check reports how many expectations failed / rows were unexpected
FAILED_EXPECTATION_KEYS = (
    "expectations_failed",
    "failed_expectations",
    "unsuccessful_expectations",
    "failing_expectations",
)
UNEXPECTED_ROW_KEYS = ("unexpected_count", "unexpected_rows", "failing_rows")
DRAIN_COUNTS = {
    "received": ("latam_drain_received_messages_total", "Messages a drain took from the queue."),
    "inserted": ("latam_drain_inserted_events_total", "Events a drain wrote to raw."),
    "duplicates": (
        "latam_drain_duplicate_messages_total",
        "Messages a drain found already in raw (redeliveries and re-publications).",
    ),
    "quarantined": (
        "latam_drain_quarantined_messages_total",
        "Messages a drain sent to raw.quarantine.",
    ),
    "seconds": ("latam_drain_duration_seconds_total", "Time spent draining."),
}
# finished runs by job and status, and drain runs by queue and status: (metric, help)
RUNS_TOTAL = ("latam_dagster_runs_total", "Finished runs by job and status.")
DRAIN_RUNS_TOTAL = (
    "latam_drain_runs_total",
    "Finished drain runs by queue and status (success, failure, canceled).",
)


@dataclass
class _Drain:
    totals: dict[str, float] = field(default_factory=lambda: dict.fromkeys(DRAIN_COUNTS, 0.0))
    last_rate: float = 0.0
    last_timestamp: float = 0.0


@dataclass
class _CheckResult:
    passed: bool
    timestamp: float
    blocking: bool
    severity: str
    failed_expectations: float | None
    unexpected_rows: float | None


def _number(metadata: dict[str, Any], keys: tuple[str, ...]) -> float | None:
    for key in keys:
        if key in metadata:
            value = getattr(metadata[key], "value", metadata[key])
            if isinstance(value, int | float) and not isinstance(value, bool):
                return float(value)
    return None


class DagsterCollector:
    """Metrics read from the Dagster instance (labels `asset`, `job`, `queue`, `check`)."""

    name = "dagster"

    def __init__(self, instance_factory: Callable[[], Any], topology_prefix: str) -> None:
        self._factory = instance_factory
        self._instance: Any = None
        self.prefix = topology_prefix
        self._runs: dict[tuple[str, str], int] = {}
        # every queue's drain counters exist from the start, so the first failure is an increase
        self._drain_runs: dict[tuple[str, str], int] = {
            (f"{topology_prefix}.{family}", state): 0 for family in QUEUES for state in RUN_STATES
        }
        self._counted_runs: OrderedDict[str, None] = OrderedDict()
        self._runs_after: datetime | None = None
        self._drains: dict[str, _Drain] = {}
        self._drain_cursors: dict[Any, str | None] = {}
        self._check_cursor: int | None = None
        self._checks: dict[tuple[str, str], dict[str, _CheckResult]] = {}
        self._check_counts: dict[tuple[str, str, str], int] = {}

    @property
    def instance(self) -> Any:
        if self._instance is None:
            self._instance = self._factory()
        return self._instance

    def collect(self, out: Families) -> None:
        from dagster import DagsterRunStatus, RunsFilter

        instance = self.instance
        self._poll_runs(instance, RunsFilter, DagsterRunStatus)
        self._in_progress(instance, out, RunsFilter, DagsterRunStatus)
        self._poll_drains(instance)
        self._poll_checks(instance)
        self._materializations(instance, out)
        self._emit(out)

    # --- runs --------------------------------------------------------------------------------

    def _poll_runs(self, instance: Any, runs_filter: Any, status: Any) -> None:
        finished = [status.SUCCESS, status.FAILURE, status.CANCELED]
        for _ in range(1000):  # bounded: at most 1M runs per collection
            # one second of overlap: update timestamps are not unique; counted ids are skipped
            after = self._runs_after - timedelta(seconds=1) if self._runs_after else None
            records = instance.get_run_records(
                filters=runs_filter(statuses=finished, updated_after=after),
                limit=PAGE,
                order_by="update_timestamp",
                ascending=True,
            )
            fresh = 0
            for record in records:
                run = record.dagster_run
                stamp = record.update_timestamp
                if self._runs_after is None or stamp > self._runs_after:
                    self._runs_after = stamp
                if run.run_id in self._counted_runs:
                    continue
                fresh += 1
                self._counted_runs[run.run_id] = None
                if len(self._counted_runs) > 200_000:
                    self._counted_runs.popitem(last=False)
                state = run.status.value.lower()
                for known in RUN_STATES:  # a job's series all exist once it has run
                    self._runs.setdefault((run.job_name, known), 0)
                key = (run.job_name, state)
                self._runs[key] = self._runs.get(key, 0) + 1
                for family in filter(None, run.tags.get(DRAIN_TAG, "").split(",")):
                    queue_key = (f"{self.prefix}.{family}", state)
                    self._drain_runs[queue_key] = self._drain_runs.get(queue_key, 0) + 1
            if len(records) < PAGE or fresh == 0:
                return

    def _in_progress(self, instance: Any, out: Families, runs_filter: Any, status: Any) -> None:
        active = [status.QUEUED, status.NOT_STARTED, status.STARTING, status.STARTED]
        counts: dict[str, int] = {}
        for record in instance.get_run_records(filters=runs_filter(statuses=active), limit=PAGE):
            job = record.dagster_run.job_name
            counts[job] = counts.get(job, 0) + 1
        for job in sorted(set(counts) | {job for job, _ in self._runs}):
            out.gauge(
                "latam_dagster_runs_in_progress",
                "Runs queued or running, by job.",
                counts.get(job, 0),
                job=job,
            )

    # --- drains ------------------------------------------------------------------------------

    def _poll_drains(self, instance: Any) -> None:
        """Add up the metadata of new drain materializations (assets under `raw/`)."""
        for key in instance.get_asset_keys(prefix=["raw"]):
            for _ in range(1000):
                result = instance.fetch_materializations(
                    key, limit=PAGE, cursor=self._drain_cursors.get(key), ascending=True
                )
                for record in result.records:
                    self._add_drain(record)
                if result.records:
                    self._drain_cursors[key] = result.cursor
                if not result.has_more:
                    break

    def _add_drain(self, record: Any) -> None:
        materialization = record.asset_materialization
        if materialization is None:
            return
        md = materialization.metadata
        if "queue" not in md or "received" not in md:
            return
        drain = self._drains.setdefault(str(md["queue"].value), _Drain())
        for key in DRAIN_COUNTS:
            if key in md:
                drain.totals[key] += float(md[key].value or 0)
        if "msg_per_s" in md:
            drain.last_rate = float(md["msg_per_s"].value or 0)
        drain.last_timestamp = record.timestamp

    # --- checks ------------------------------------------------------------------------------

    def _poll_checks(self, instance: Any) -> None:
        from dagster import DagsterEventType, EventRecordsFilter

        for _ in range(1000):
            records = instance.get_event_records(
                EventRecordsFilter(
                    event_type=DagsterEventType.ASSET_CHECK_EVALUATION,
                    after_cursor=self._check_cursor,
                ),
                limit=PAGE,
                ascending=True,
            )
            for record in records:
                self._check_cursor = record.storage_id
                self._add_check(record)
            if len(records) < PAGE:
                return

    def _add_check(self, record: Any) -> None:
        event = record.event_log_entry.dagster_event
        evaluation = event.event_specific_data if event else None
        if evaluation is None:
            return
        asset = evaluation.asset_key.to_user_string()
        key = (asset, evaluation.check_name)
        md = evaluation.metadata or {}
        result = _CheckResult(
            passed=bool(evaluation.passed),
            timestamp=record.timestamp,
            blocking=bool(getattr(evaluation, "blocking", False)),
            severity=str(getattr(evaluation.severity, "value", evaluation.severity)).lower(),
            failed_expectations=_number(md, FAILED_EXPECTATION_KEYS),
            unexpected_rows=_number(md, UNEXPECTED_ROW_KEYS),
        )
        partition = getattr(evaluation, "partition", None) or ""
        self._checks.setdefault(key, {})[partition] = result
        for outcome in ("passed", "failed"):
            self._check_counts.setdefault((*key, outcome), 0)
        count_key = (*key, "passed" if result.passed else "failed")
        self._check_counts[count_key] = self._check_counts.get(count_key, 0) + 1

    # --- assets ------------------------------------------------------------------------------

    def _materializations(self, instance: Any, out: Families) -> None:
        now = time.time()
        for record in instance.get_asset_records():
            entry = record.asset_entry
            last = entry.last_materialization_record
            if last is None:
                continue
            asset = entry.asset_key.to_user_string()
            out.gauge(
                "latam_asset_last_materialization_timestamp_seconds",
                "When the asset was last materialized successfully (Unix time).",
                last.timestamp,
                asset=asset,
            )
            out.gauge(
                "latam_asset_materialization_age_seconds",
                "Seconds since the asset was last materialized successfully.",
                max(0.0, now - last.timestamp),
                asset=asset,
            )

    # --- output ------------------------------------------------------------------------------

    def _emit(self, out: Families) -> None:
        per_key(out.counter, *RUNS_TOTAL, self._runs, "job", "status")
        per_key(out.counter, *DRAIN_RUNS_TOTAL, self._drain_runs, "queue", "status")
        for queue, drain in sorted(self._drains.items()):
            for key, (name, doc) in DRAIN_COUNTS.items():
                out.counter(name, doc, drain.totals[key], queue=queue)
            out.gauge(
                "latam_drain_last_rate_messages_per_second",
                "Messages per second of the latest drain of the queue.",
                drain.last_rate,
                queue=queue,
            )
            out.gauge(
                "latam_drain_last_timestamp_seconds",
                "When the latest drain of the queue finished (Unix time).",
                drain.last_timestamp,
                queue=queue,
            )
        out.declare_gauge(
            "latam_quality_check_passed",
            "1 when the latest evaluation of every partition of the check passed, else 0.",
            "asset",
            "check",
            "blocking",
            "check_severity",
        )
        for (asset, check), partitions in sorted(self._checks.items()):
            latest = max(partitions.values(), key=lambda r: r.timestamp)
            failing = [r for r in partitions.values() if not r.passed]
            out.gauge(
                "latam_quality_check_passed",
                "1 when the latest evaluation of every partition of the check passed, else 0.",
                0 if failing else 1,
                asset=asset,
                check=check,
                blocking=str(latest.blocking).lower(),
                check_severity=latest.severity,
            )
            out.gauge(
                "latam_quality_check_failing_partitions",
                "Partitions whose latest evaluation of the check failed ('' for unpartitioned).",
                len(failing),
                asset=asset,
                check=check,
            )
            out.gauge(
                "latam_quality_check_last_evaluation_timestamp_seconds",
                "When the check was last evaluated (Unix time).",
                latest.timestamp,
                asset=asset,
                check=check,
            )
            # a failing check that reports no expectation count counts as one failed rule
            failed = sum(
                r.failed_expectations if r.failed_expectations is not None else 1 for r in failing
            )
            out.gauge(
                "latam_quality_failing_expectations",
                "Expectations failing in the latest evaluations of the check.",
                failed,
                asset=asset,
                check=check,
            )
            unexpected = [r.unexpected_rows for r in failing if r.unexpected_rows is not None]
            out.gauge(
                "latam_quality_unexpected_rows",
                "Rows that broke the check in its latest failing evaluations (0 when passing).",
                sum(unexpected),
                asset=asset,
                check=check,
            )
        for (asset, check, result), count in sorted(self._check_counts.items()):
            out.counter(
                "latam_quality_check_evaluations_total",
                "Check evaluations by result.",
                count,
                asset=asset,
                check=check,
                result=result,
            )
