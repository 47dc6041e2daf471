"""One measured drain in its own process, so that its peak RSS is the drain's alone.

Peak RSS is the process's own VmHWM, read when the drain returns. (`ru_maxrss` of a child is not
used: Linux carries the parent's resident set at fork time over into it.)

Run by `bench.ingest` as `python -m bench.drain_run '<json spec>'`; writes a JSON result file.
The rate is taken from `on_batch` timestamps: messages acked up to the last *full* batch, divided by
the time from the `drain_queue` call to that batch's ack. The final partial batch is left out
because it is only flushed after the drain has waited in vain for more messages (end-of-queue
detection, not throughput). `end_to_end_seconds` (DrainStats.seconds minus the idle wait) is kept as
a cross-check.
"""

from __future__ import annotations

import cProfile
import importlib
import json
import re
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bench.harness import backend_pids, broker_pid, process_cpu_seconds
from latam_dagster.ingest.drain import DrainConfig, DrainStats, drain_queue
from latam_dagster.ingest.topology import Topology


def _status_kb(field: str) -> int:
    """A memory figure of this process from /proc (VmHWM is the peak resident set)."""
    text = Path("/proc/self/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) if match else 0


def _drain_function(target: str | None) -> Callable[..., DrainStats]:
    """`drain_queue`, or a candidate with the same signature named as `module:function`."""
    if not target:
        return drain_queue
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def run(spec: dict) -> dict:
    """Drain the queue described by `spec` and measure it."""
    config = DrainConfig(
        batch_size=spec["batch_size"],
        prefetch=spec["prefetch"],
        max_messages=10**12,  # the bench drains the whole queue: no budget may cut it short
        max_seconds=3600.0,
        idle_seconds=spec["idle_seconds"],
    )
    marks: list[tuple[float, int]] = []
    backend: list[int] = []
    postgres_cpu = [0.0]

    def on_batch(stats: DrainStats) -> None:
        marks.append((time.monotonic(), stats.received))
        # the drain's Postgres backend: the only session on the bench database during the run
        if not backend:
            backend.extend(backend_pids(spec["database"])[:1])
        if backend:
            postgres_cpu[0] = process_cpu_seconds(backend[0]) or postgres_cpu[0]

    rss_before_kb = _status_kb("VmRSS")
    broker = broker_pid()
    broker_cpu_before = process_cpu_seconds(broker) if broker else None
    own_before = resource.getrusage(resource.RUSAGE_SELF)
    profiler = cProfile.Profile() if spec.get("cprofile") else None
    started = time.monotonic()
    if profiler:
        profiler.enable()
    drain = _drain_function(spec.get("drain_impl"))
    stats = drain(
        spec["amqp_url"],
        spec["warehouse_url"],
        Topology(prefix=spec["prefix"]),
        spec["family"],
        config,
        on_batch=on_batch,
    )
    if profiler:
        profiler.disable()
        profiler.dump_stats(spec["cprofile"])
    own_after = resource.getrusage(resource.RUSAGE_SELF)
    broker_cpu_after = process_cpu_seconds(broker) if broker else None
    own_cpu = (own_after.ru_utime - own_before.ru_utime) + (
        own_after.ru_stime - own_before.ru_stime
    )
    per_msg = 1e6 / max(stats.received, 1)
    cpu_us = {
        "drain_process": round(own_cpu * per_msg, 1),
        "postgres_backend": round(postgres_cpu[0] * per_msg, 1) if backend else None,
        "broker": round((broker_cpu_after - broker_cpu_before) * per_msg, 1)
        if broker_cpu_before is not None and broker_cpu_after is not None
        else None,
    }

    sizes = [n - prev for (_, n), (_, prev) in zip(marks, [(started, 0), *marks], strict=False)]
    full = [i for i, size in enumerate(sizes) if size >= config.batch_size]
    last = full[-1] if full else len(marks) - 1
    measured_at, measured_count = marks[last] if marks else (started, 0)
    seconds = measured_at - started
    end_to_end = stats.seconds - config.idle_seconds
    return {
        "batch_size": config.batch_size,
        "prefetch": config.prefetch,
        "received": stats.received,
        "inserted": stats.inserted,
        "duplicates": stats.duplicates,
        "quarantined": stats.quarantined,
        "quarantine_duplicates": stats.quarantine_duplicates,
        "batches": stats.batches,
        "batch_size_min": min(sizes, default=0),
        "batch_size_max": max(sizes, default=0),
        "stop_reason": stats.stop_reason,
        "measured_messages": measured_count,
        "measured_seconds": round(seconds, 3),
        "rate": measured_count / seconds if seconds > 0 else 0.0,
        "first_batch_seconds": round(marks[0][0] - started, 3) if marks else None,
        "end_to_end_seconds": round(end_to_end, 3),
        "end_to_end_rate": stats.received / end_to_end if end_to_end > 0 else 0.0,
        "cpu_us_per_msg": cpu_us,
        "rss_before_drain_mb": round(rss_before_kb / 1024, 1),
        "peak_rss_mb": round(_status_kb("VmHWM") / 1024, 1),
    }


def main(argv: list[str] | None = None) -> int:
    spec = json.loads((argv if argv is not None else sys.argv[1:])[0])
    result = run(spec)
    Path(spec["result"]).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
