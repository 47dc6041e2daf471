"""Storage benchmark: what drain runs leave in the Dagster instance's own database, per run and
per day at 500 events/s, and what stays of it under the retention windows.

    .venv/bin/python -m bench.dagster_storage                    # 30 drain runs of 2,500 events
    .venv/bin/python -m bench.dagster_storage --runs 12 --gx-every 5 # a quick look

A Dagster instance configured by infra/dagster/dagster.yaml on a Postgres database of its own,
a migrated warehouse and a topology of their own (all removed at the end). Each drain run is the
real one: simulated events are published to the topology's exchange, the queue sensor is
evaluated and its run request executed (in process), with the tags the daemon adds, and the tick
the sensor daemon would store. Sizes are pg_total_relation_size (table, indexes, TOAST) and row
counts of every table of the instance database after each run (vacuumed, as autovacuum keeps
it). The baseline is the raw tables the same events land in. Then the older half of the runs is
purged (`purge_old_runs`, with their ticks), as the daily retention job would once they are past
their window, and as many new runs refill the database: with retention its size stays where it
was. Goals: with retention, the instance's steady-state size is at most one day of the raw
tables' growth (GOAL_STEADY_RAW_DAYS), and the refill grows the database by at most 10 %
(GOAL_REFILL_RATIO). The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any

from bench import harness
from latam_dagster.db import connection, ensure_database
from latam_dagster.ingest.topology import open_connection, queue_depths
from latam_dagster.settings import Settings, get_settings, normalize_pg_url

ROOT = Path(__file__).resolve().parent.parent
DAY = 86_400.0
GOAL_STEADY_RAW_DAYS = 1.0
GOAL_REFILL_RATIO = 1.1
# what the run retention deletes with a run (`delete_run`, run_tags by ON DELETE CASCADE, and
# the run's asset check executions)
PER_RUN_TABLES = ("runs", "run_tags", "event_logs", "asset_event_tags", "asset_check_executions")
TICKS_TABLE = "job_ticks"
# events a run launched by the daemon logs and an in-process one does not: enqueued, dequeued,
# starting, and the run worker's "Started process" and "Process for run exited"; counted at the
# measured size of an event row
LAUNCH_EVENTS = 5
QUEUE_SENSOR = "queue_sensor"
# the tags the sensor daemon adds to a run it launches (dagster._core.storage.tags)
SENSOR_NAME_TAG, RUN_KEY_TAG, TICK_ID_TAG = "dagster/sensor_name", "dagster/run_key", "dagster/tick"

Sizes = dict[str, tuple[int, int]]  # table -> (bytes, rows)


def table_sizes(url: str) -> Sizes:
    """Bytes (table, indexes and TOAST) and rows of every table of the instance database."""
    with connection(url) as conn, conn.cursor() as cur:
        cur.execute(
            """SELECT c.relname, pg_total_relation_size(c.oid)
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = 'public' AND c.relkind = 'r'"""
        )
        found = dict(cur.fetchall())
        sizes = {}
        for table, size in sorted(found.items()):
            cur.execute(f'SELECT count(*) FROM "{table}"')
            sizes[table] = (int(size), int(cur.fetchone()[0]))
    return sizes


def raw_bytes(warehouse_url: str) -> int:
    """Bytes of the raw tables the drained events land in: the bare baseline."""
    with connection(warehouse_url) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT sum(pg_total_relation_size(t::regclass)) FROM unnest(%s::text[]) t",
            (list(harness.RAW_TABLES),),
        )
        return int(cur.fetchone()[0])


def growth(before: Sizes, after: Sizes) -> Sizes:
    """Per table: bytes and rows added from `before` to `after` (tables that did not change left
    out)."""
    out = {}
    for table, (size, rows) in after.items():
        old_size, old_rows = before.get(table, (0, 0))
        if (size, rows) != (old_size, old_rows):
            out[table] = (size - old_size, rows - old_rows)
    return out


def total(sizes: Sizes) -> int:
    """Bytes of every table in `sizes`."""
    return sum(size for size, _rows in sizes.values())


@dataclass(frozen=True)
class RunFigures:
    """One drain run: whether it evaluated the GX checks, and the sizes after it."""

    index: int
    gx: bool
    success: bool
    seconds: float
    events: int
    sizes: Sizes
    raw: int
    finished: datetime


class SensorTicks:
    """The queue sensor's ticks, stored as the sensor daemon stores them (the bench evaluates the
    sensor itself, so no daemon writes them): STARTED, then the run request, then the outcome."""

    def __init__(self, instance: Any) -> None:
        self.instance = instance
        # ids of the same form (SHA-1 hex) as a code location's sensor origin and selector
        self.origin_id = hashlib.sha1(f"origin:{QUEUE_SENSOR}".encode()).hexdigest()
        self.selector_id = hashlib.sha1(f"selector:{QUEUE_SENSOR}".encode()).hexdigest()

    def _start(self) -> Any:
        from dagster._core.definitions.run_request import InstigatorType
        from dagster._core.scheduler.instigation import TickData, TickStatus

        return self.instance.create_tick(
            TickData(
                instigator_origin_id=self.origin_id,
                instigator_name=QUEUE_SENSOR,
                instigator_type=InstigatorType.SENSOR,
                status=TickStatus.STARTED,
                timestamp=time.time(),
                selector_id=self.selector_id,
            )
        )

    def skipped(self, reason: str) -> None:
        from dagster._core.scheduler.instigation import TickStatus

        tick = self._start()
        self.instance.update_tick(tick.with_status(TickStatus.SKIPPED).with_reason(reason))

    def requested(self, request: Any, run_id: str) -> Any:
        tick = self._start().with_run_requests([request], reserved_run_ids=[run_id])
        self.instance.update_tick(tick)
        return tick

    def launched(self, tick: Any, run_id: str, run_key: str) -> None:
        from dagster._core.scheduler.instigation import TickStatus

        tick = tick.with_run_info(run_id, run_key).with_status(TickStatus.SUCCESS)
        self.instance.update_tick(tick)

    def purge(self, before: datetime) -> None:
        """The ticks before `before`, as if they had aged past their windows."""
        self.instance.purge_ticks(self.origin_id, self.selector_id, before=before.timestamp())


@dataclass
class Bench:
    """One run's environment: broker, warehouse, instance, the code location and the events."""

    env: harness.BenchEnv
    dagster_url: str
    instance: Any
    defs: Any
    events: Iterator[Any]
    per_run: int
    gx_every: int
    ticks: SensorTicks
    last_request: Any = None

    def evaluate_sensor(self, check_interval: float) -> Any:
        """The queue sensor's answer now; `check_interval` 0 makes the GX checks due."""
        from dagster import build_sensor_context

        from latam_dagster.resources import RabbitMQResource
        from latam_dagster.sensors.queue_sensors import queue_sensor

        os.environ["LATAM_DRAIN_CHECK_INTERVAL_SECONDS"] = str(check_interval)
        context = build_sensor_context(
            instance=self.instance,
            definitions=self.defs,
            resources={"rabbitmq": RabbitMQResource()},  # the environment's broker and topology
        )
        return queue_sensor(context)

    def drain_run(self, index: int) -> RunFigures:
        """Publish a batch, let the sensor request its run, run it, measure the database."""
        from dagster import RunRequest

        sent = harness.publish(
            self.env, ((m.routing_key, m.body) for m in islice(self.events, self.per_run))
        )
        wait_for_messages(self.env, sent)
        # the checks are due every `gx_every` runs (and whenever they never ran or last failed)
        request = self.evaluate_sensor(0 if index % self.gx_every == 0 else 1e12)
        if not isinstance(request, RunRequest):
            raise RuntimeError(f"the queue sensor requested no run: {request}")
        self.last_request = request
        run_id = str(uuid.uuid4())
        tick = self.ticks.requested(request, run_id)
        job = self.defs.resolve_job_def("drain_job").get_subset(
            asset_selection=set(request.asset_selection),
            asset_check_selection=set(request.asset_check_keys or ()),
        )
        tags = {
            **request.tags,
            SENSOR_NAME_TAG: QUEUE_SENSOR,
            RUN_KEY_TAG: request.run_key,
            TICK_ID_TAG: str(tick.tick_id),
        }
        started = time.monotonic()
        result = job.execute_in_process(
            instance=self.instance, tags=tags, run_id=run_id, raise_on_error=False
        )
        seconds = time.monotonic() - started
        self.ticks.launched(tick, run_id, request.run_key)
        # dead row versions (a run row is updated at every status change) are autovacuum's: the
        # figures are the live rows'
        vacuum(self.dagster_url)
        return RunFigures(
            index=index,
            gx=request.tags.get("latam/checks") == "yes",
            success=result.success,
            seconds=seconds,
            events=sent,
            sizes=table_sizes(self.dagster_url),
            raw=raw_bytes(self.env.warehouse_url),
            finished=datetime.now(UTC),
        )


def wait_for_messages(env: harness.BenchEnv, expected: int, timeout: float = 60.0) -> None:
    """Until the topology's queues hold `expected` ready messages: the run drains one batch."""
    deadline = time.monotonic() + timeout
    while sum(queue_depths(env.amqp_url, env.topo).values()) < expected:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the queues of {env.topo.prefix} never held {expected} messages")
        time.sleep(0.1)


def route_to_topology(env: harness.BenchEnv) -> None:
    """Send the bench exchange's messages through the topology's own exchange, so each event
    reaches the queue of its family by its routing key, as in production."""
    conn = open_connection(env.amqp_url)
    try:
        channel = conn.channel()
        channel.queue_unbind(env.queue, env.bench_exchange, routing_key="#")
        channel.exchange_bind(env.topo.exchange, env.bench_exchange, routing_key="#")
    finally:
        conn.close()


@contextmanager
def stderr_to(path: Path) -> Iterator[None]:
    """The runs' log lines (Dagster's console logger, the JSON handler of dagster.yaml, GX) go
    to a file: the bench prints its figures only."""
    sys.stderr.flush()
    saved = os.dup(2)
    with path.open("ab") as log:
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def configure(env: harness.BenchEnv, dagster_url: str, home: Path) -> None:
    """The environment the code location and the instance read, pointing at this run's own
    warehouse, topology and instance database (dagster.yaml as the repository ships it)."""
    shutil.copy(ROOT / "infra" / "dagster" / "dagster.yaml", home / "dagster.yaml")
    os.environ.pop("LATAM_ENV", None)
    os.environ.update(
        {
            "DAGSTER_HOME": str(home),
            "LATAM_DAGSTER_PG_URL": normalize_pg_url(dagster_url),
            "LATAM_WAREHOUSE_URL": env.warehouse_url,
            "LATAM_PIPELINE_DATABASE_URL": env.warehouse_url,
            "LATAM_AMQP_URL": env.amqp_url,
            "LATAM_TOPOLOGY_PREFIX": env.topo.prefix,
            "LATAM_QUALITY_DIR": str(home / "quality"),
            "LATAM_QUALITY_BUILD_DOCS": "false",
            "GX_ANALYTICS_ENABLED": "false",
            "DAGSTER_DISABLE_TELEMETRY": "1",
        }
    )


def vacuum(url: str) -> None:
    """What autovacuum does: the space of deleted and updated rows' old versions becomes
    reusable, so the sizes are the live rows'."""
    harness.admin_exec(url, "VACUUM")


def per_run(runs: list[RunFigures], start: Sizes, start_raw: int) -> dict[str, Any]:
    """Average growth per run over `runs` (each measured against the one before), split into the
    runs that evaluated the GX checks and the ones that did not."""
    previous, previous_raw = start, start_raw
    split: dict[bool, list[tuple[Sizes, int]]] = {False: [], True: []}
    for run in runs:
        split[run.gx].append((growth(previous, run.sizes), run.raw - previous_raw))
        previous, previous_raw = run.sizes, run.raw
    out: dict[str, Any] = {}
    for gx, grown in split.items():
        if not grown:
            continue
        tables: dict[str, list[int]] = {}
        for sizes, _raw in grown:
            for table, (size, rows) in sizes.items():
                acc = tables.setdefault(table, [0, 0])
                acc[0] += size
                acc[1] += rows
        n = len(grown)
        size = sum(size for size, _ in tables.values()) / n
        deleted = sum(tables.get(t, [0, 0])[0] for t in PER_RUN_TABLES) / n
        tick = tables.get(TICKS_TABLE, [0, 0])[0] / n
        event_size, event_rows = tables.get("event_logs", [0, 1])
        out["gx" if gx else "plain"] = {
            "runs": n,
            "tables": {t: (size / n, rows / n) for t, (size, rows) in sorted(tables.items())},
            "bytes": size,
            "rows": sum(rows for _, rows in tables.values()) / n,
            "deleted_with_run_bytes": deleted,
            # what neither run retention nor tick retention deletes
            "kept_bytes": size - deleted - tick,
            "launch_events_bytes": LAUNCH_EVENTS * event_size / max(event_rows, 1),
            "raw_bytes": sum(raw for _, raw in grown) / n,
        }
    return out


def per_day(
    settings: Settings, runs_a_day: float, measured: Mapping[str, Any], success_days: float
) -> dict[str, Any]:
    """Growth per day for `runs_a_day` drain runs, without and with retention (`measured`: the
    per-run figures `plain` and `gx`, `ticks` bytes, `other_ticks_a_day`, `raw_bytes_a_day`,
    and the sensor tick windows `tick_days`)."""
    ticks, tick_days = measured["ticks"], measured["tick_days"]
    ticks_a_day = DAY / settings.sensor_interval_seconds
    gx_runs = min(runs_a_day, DAY / settings.drain_check_interval_seconds)
    plain_runs = runs_a_day - gx_runs
    skipped = max(0.0, ticks_a_day - runs_a_day) + measured["other_ticks_a_day"]

    def run_bytes(key: str) -> float:
        return plain_runs * measured["plain"][key] + gx_runs * measured["gx"][key]

    deleted = run_bytes("deleted_with_run_bytes") + run_bytes("launch_events_bytes")
    kept = run_bytes("kept_bytes")
    success_ticks = runs_a_day * ticks["success"]
    skipped_ticks = skipped * ticks["skipped"]
    # Dagster's defaults: runs and successful ticks for ever, skipped sensor ticks 7 days
    default_growth = deleted + kept + success_ticks
    steady = (
        success_days * deleted
        + tick_days["success"] * success_ticks
        + tick_days["skipped"] * skipped_ticks
    )
    return {
        "runs_a_day": runs_a_day,
        "gx_runs_a_day": gx_runs,
        "queue_sensor_ticks_a_day": ticks_a_day,
        "skipped_ticks_a_day": skipped,
        "raw_bytes_a_day": measured["raw_bytes_a_day"],
        "without_retention_bytes_a_day": default_growth,
        "without_retention_plateau_skipped_ticks_bytes": 7 * skipped_ticks,
        "with_retention_steady_bytes": steady,
        "with_retention_bytes_a_day_after": kept,
        "steady_raw_days": steady / measured["raw_bytes_a_day"],
    }


def verdict(value: float, goal: float) -> str:
    return "PASS" if value <= goal else "FAIL"


def mb(value: float) -> str:
    return f"{value / 1e6:,.1f} MB"


def report_tables(label: str, figures: Mapping[str, Any]) -> None:
    print(f"  {label}: {figures['runs']} run(s), {figures['rows']:.1f} rows and "
          f"{figures['bytes'] / 1024:.1f} KiB per run (raw tables {figures['raw_bytes'] / 1024:.1f} "
          f"KiB)")  # fmt: skip
    for table, (size, rows) in figures["tables"].items():
        print(f"      {table:<28} {rows:8.1f} rows {size / 1024:9.1f} KiB")


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Set everything up, run the drain runs, purge, run more, and compute the figures."""
    settings = get_settings()
    summary: dict[str, Any] = {"benchmark": "dagster_storage", "events_per_run": args.events}
    log_path = Path(tempfile.gettempdir()) / f"latam-bench-dagster-storage-{os.getpid()}.log"
    with (
        tempfile.TemporaryDirectory(prefix="latam-bench-dagster-") as tmp,
        harness.bench_environment(args.amqp_url, args.pg_url) as env,
    ):
        dagster_db = f"{env.database}_dagster"
        dagster_url = harness.with_database(env.admin_url, dagster_db)
        try:
            ensure_database(dagster_url)
            route_to_topology(env)
            configure(env, dagster_url, Path(tmp))
            print(f"dagster storage benchmark: instance database {dagster_db}, warehouse "
                  f"{env.database}, topology {env.topo.prefix}.*; {args.runs} drain runs of "
                  f"{args.events} events, then half as many after the purge; run logs in "
                  f"{log_path}", flush=True)  # fmt: skip
            with stderr_to(log_path):
                summary.update(_measure(args, settings, env, dagster_url))
        finally:
            harness.drop_database(env.admin_url, dagster_db)
    return summary


def _measure(
    args: argparse.Namespace, settings: Settings, env: harness.BenchEnv, dagster_url: str
) -> dict[str, Any]:
    from dagster import DagsterInstance

    from latam_dagster.definitions import defs
    from latam_dagster.instance_retention import purge_old_runs
    from latam_dagster.simulator import generate
    from latam_dagster.transform.airports import load_dim_airport

    # flights between known airports get past the audit, as in production
    load_dim_airport(env.warehouse_url)
    instance = DagsterInstance.get()
    bench = Bench(
        env=env,
        dagster_url=dagster_url,
        instance=instance,
        defs=defs,
        events=iter(generate(args.seed, systems=args.systems, rate=args.rate)),
        per_run=args.events,
        gx_every=args.gx_every,
        ticks=SensorTicks(instance),
    )
    empty = table_sizes(dagster_url)
    started = time.monotonic()
    first = bench.drain_run(0)  # one-off: asset keys, job snapshots, the first GX run
    runs = [bench.drain_run(i) for i in range(1, args.runs)]
    measured = per_run(runs, first.sizes, first.raw)
    one_off = growth(empty, first.sizes)
    ticks = tick_bytes(bench, args.ticks)
    before_purge = table_sizes(dagster_url)

    # retention: the older half of the runs (and their ticks) past its window, as the daily
    # job finds them, autovacuum's work, then as many new runs as were deleted
    success_days = settings.run_retention_success_days
    boundary = runs[len(runs) // 2].finished
    purged = purge_old_runs(
        instance,
        boundary + timedelta(days=success_days),
        success_days,
        settings.run_retention_failure_days,
    )
    bench.ticks.purge(boundary)
    vacuum(dagster_url)
    deleted = sum(purged.runs.values())
    after = [bench.drain_run(args.runs + i) for i in range(deleted)]
    refilled = growth(before_purge, after[-1].sizes)
    seconds = time.monotonic() - started
    instance.dispose()

    plain = measured.get("plain") or measured["gx"]
    gx = measured.get("gx") or plain
    tick_days = instance_tick_days()
    other_ticks = other_sensor_ticks_a_day(defs, settings)
    scenarios = {
        # every sensor tick finds a batch and requests a run: 500 ev/s x the sensor interval
        "run_per_tick": DAY / settings.sensor_interval_seconds,
        # steady traffic: a drain runs to its time budget, the next takes over
        "steady_traffic": DAY / settings.drain_max_seconds,
    }
    # the raw tables grow with the events, whatever the runs they come in
    raw_per_event = (runs[-1].raw - first.raw) / sum(run.events for run in runs)
    inputs = {
        "plain": plain,
        "gx": gx,
        "ticks": ticks,
        "tick_days": tick_days,
        "other_ticks_a_day": other_ticks,
        "raw_bytes_a_day": raw_per_event * args.rate * DAY,
    }
    days = {name: per_day(settings, r, inputs, success_days) for name, r in scenarios.items()}
    return {
        "runs": len(runs) + 1 + len(after),
        "failed_runs": sum(not r.success for r in [first, *runs, *after]),
        "seconds": round(seconds, 1),
        "run_seconds_median": sorted(r.seconds for r in runs)[len(runs) // 2],
        "per_run": measured,
        "first_run_one_off": one_off,
        "ticks_bytes": ticks,
        "other_sensor_ticks_a_day": other_ticks,
        "purged": asdict(purged),
        "size_before_purge": total(before_purge),
        "size_after_refill": total(after[-1].sizes),
        "refill_growth": refilled,
        "settings": {
            "sensor_interval_seconds": settings.sensor_interval_seconds,
            "drain_max_seconds": settings.drain_max_seconds,
            "drain_check_interval_seconds": settings.drain_check_interval_seconds,
            "run_retention_success_days": success_days,
            "run_retention_failure_days": settings.run_retention_failure_days,
            "sensor_tick_retention_days": tick_days,
        },
        "per_day": days,
        "verdicts": {
            "refill": verdict(total(after[-1].sizes) / total(before_purge), GOAL_REFILL_RATIO),
            **{n: verdict(d["steady_raw_days"], GOAL_STEADY_RAW_DAYS) for n, d in days.items()},
        },
    }


def tick_bytes(bench: Bench, count: int) -> dict[str, float]:
    """Bytes of a queue sensor tick that requested a run (the last run's request) and of a
    skipped one (the sensor's answer on the empty queues), `count` of each written."""
    from dagster import SkipReason

    skip = bench.evaluate_sensor(1e12)
    if not isinstance(skip, SkipReason):
        raise RuntimeError(f"the queue sensor did not skip on empty queues: {skip}")
    request = bench.last_request
    figures = {}
    for kind in ("success", "skipped"):
        before = table_sizes(bench.dagster_url)[TICKS_TABLE][0]
        for _ in range(count):
            if kind == "skipped":
                bench.ticks.skipped(skip.skip_message or "")
                continue
            run_id = str(uuid.uuid4())
            bench.ticks.launched(bench.ticks.requested(request, run_id), run_id, request.run_key)
        vacuum(bench.dagster_url)
        figures[kind] = (table_sizes(bench.dagster_url)[TICKS_TABLE][0] - before) / count
    return figures


def instance_tick_days() -> dict[str, int]:
    """The sensor tick windows of dagster.yaml (days; -1 for ever)."""
    import yaml

    config = yaml.safe_load((ROOT / "infra" / "dagster" / "dagster.yaml").read_text())
    days = config["retention"]["sensor"]["purge_after_days"]
    return {"skipped": days["skipped"], "success": days["success"]}


def other_sensor_ticks_a_day(defs: Any, settings: Settings) -> float:
    """Ticks a day of the code location's other sensors (mostly skipped), and its schedules."""
    ticks = 0.0
    for sensor in defs.sensors or []:
        if sensor.name != QUEUE_SENSOR:
            ticks += DAY / (sensor.minimum_interval_seconds or 30)
    return ticks + 24 + 1  # the hourly marts schedule and the daily retention


def print_report(summary: Mapping[str, Any]) -> None:
    per_run_figures = summary["per_run"]
    print(f"  {summary['runs']} drain runs in {summary['seconds']:.0f} s (median "
          f"{summary['run_seconds_median']:.1f} s a run), {summary['failed_runs']} failed")  # fmt: skip
    for key, label in (("plain", "runs without GX checks"), ("gx", "runs with GX checks")):
        if key in per_run_figures:
            report_tables(label, per_run_figures[key])
    ticks = summary["ticks_bytes"]
    print(f"  a queue sensor tick: {ticks['success']:.0f} B with its run request, "
          f"{ticks['skipped']:.0f} B skipped; first run's one-off growth "
          f"{total(summary['first_run_one_off']) / 1024:.0f} KiB")  # fmt: skip
    purged = summary["purged"]
    before, after = summary["size_before_purge"], summary["size_after_refill"]
    print(f"  retention: purged {sum(purged['runs'].values())} runs and "
          f"{purged['check_executions']} check executions, then as many new runs: the database "
          f"went from {mb(before)} to {mb(after)}, ratio {after / before:.2f} (goal <= "
          f"{GOAL_REFILL_RATIO:g}) {summary['verdicts']['refill']}:")  # fmt: skip
    for table, (size, rows) in summary["refill_growth"].items():
        print(f"      {table:<28} {rows:8d} rows {size / 1024:9.1f} KiB")
    s = summary["settings"]
    print(f"  per day at 500 events/s (queue sensor every {s['sensor_interval_seconds']} s, drain "
          f"budget {s['drain_max_seconds']:g} s, GX checks every "
          f"{s['drain_check_interval_seconds']:g} s; {summary['other_sensor_ticks_a_day']:.0f} "
          f"ticks of the other sensors and schedules; {LAUNCH_EVENTS} launch events a run "
          f"added, which in-process runs do not log):")  # fmt: skip
    for name, d in summary["per_day"].items():
        grown = d["without_retention_bytes_a_day"]
        print(f"    {name}: {d['runs_a_day']:,.0f} runs ({d['gx_runs_a_day']:.0f} with GX), "
              f"{d['skipped_ticks_a_day']:,.0f} skipped ticks; raw tables "
              f"{mb(d['raw_bytes_a_day'])}/day")  # fmt: skip
        print(f"      without retention (Dagster's defaults): +{mb(grown)}/day for ever, "
              f"{grown / d['raw_bytes_a_day']:.2f} of the raw tables' growth (+ "
              f"{mb(d['without_retention_plateau_skipped_ticks_bytes'])} of skipped ticks, kept "
              f"7 days)")  # fmt: skip
        print(f"      with retention ({s['run_retention_success_days']:g} d runs, ticks "
              f"{s['sensor_tick_retention_days']}): steady {mb(d['with_retention_steady_bytes'])}, "
              f"then +{mb(d['with_retention_bytes_a_day_after'])}/day in the tables retention "
              f"does not clear")  # fmt: skip
        print(f"      steady state / raw tables' day: {d['steady_raw_days']:.2f} (goal <= "
              f"{GOAL_STEADY_RAW_DAYS:g}) {summary['verdicts'][name]}")  # fmt: skip


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench.dagster_storage", description=__doc__.splitlines()[0])
    p.add_argument(
        "--runs", type=int, default=30, help="drain runs measured (the first is warm-up)"
    )
    p.add_argument("--events", type=int, default=2500, help="events per run (500 ev/s x 5 s)")
    p.add_argument("--gx-every", type=int, default=10, help="GX checks due every N runs")
    p.add_argument("--ticks", type=int, default=200, help="ticks of each kind measured")
    p.add_argument("--rate", type=float, default=500.0, help="simulated events per second")
    p.add_argument("--systems", type=int, default=12, help="simulated source systems")
    p.add_argument("--seed", type=int, default=11)
    harness.add_service_options(p)
    args = p.parse_args(argv)
    if args.runs < 4 or args.gx_every < 1 or args.ticks < 1:
        p.error("--runs must be at least 4, --gx-every and --ticks at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    summary = measure(args)
    print_report(summary)
    print(json.dumps(summary, default=str))
    return 0 if set(summary["verdicts"].values()) == {"PASS"} else 1


if __name__ == "__main__":
    raise SystemExit(main())
