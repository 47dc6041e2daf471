"""Ingest benchmark: drain throughput against a bare pika consumer, and the drain's peak memory.

    .venv/bin/python -m bench.ingest                  # rate: bare vs drain, 200k events
    .venv/bin/python -m bench.ingest --memory         # peak RSS of a 1M-message drain
    .venv/bin/python -m bench.ingest --variants       # batch/prefetch matrix
    .venv/bin/python -m bench.ingest --profile py-spy # where the drain spends its time

Goals: drain rate >= 0.6 x bare consume rate, drain peak RSS < 300 MB. The last line
printed is one JSON object with every figure. See bench/README.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/ingest.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import collections
import io
import json
import logging
import os
import pstats
import shutil
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass

from bench.events import record, replay
from bench.harness import (
    BenchEnv,
    add_service_options,
    bare_consume,
    bench_environment,
    publish,
    raw_row_counts,
    reset_raw_tables,
    wait_for_depth,
)
from latam_dagster.ingest.drain import DrainConfig

ROOT = Path(__file__).resolve().parent.parent
GOAL_RATIO = 0.6
GOAL_PEAK_RSS_MB = 300.0
DEFAULT_VARIANTS = "1000x2000,1000x4000,1000x10000,2000x2000,2000x4000,2000x10000,5000x10000"


@dataclass(frozen=True)
class Workload:
    """One run's messages, generated once and replayed for every publish."""

    path: Path
    source: str
    count: int
    families: dict[str, int]

    @property
    def mix(self) -> dict[str, float]:
        return {k: round(v / max(self.count, 1), 3) for k, v in sorted(self.families.items())}


def prepare(seed: int, count: int, directory: Path, source: str = "auto") -> Workload:
    """Generate the run's events (from the simulator when installed) into a file."""
    started = time.monotonic()
    path = directory / f"events-{seed}-{count}.bin"
    source, families = record(seed, count, path, source)
    workload = Workload(path, source, sum(families.values()), dict(families))
    print(
        f"generated {workload.count:,} events with {source} in {time.monotonic() - started:.1f} s; "
        f"mix {workload.mix}",
        flush=True,
    )
    return workload


def fill_queue(env: BenchEnv, workload: Workload) -> int:
    """Publish the workload to the measured queue and wait until all of it is ready."""
    started = time.monotonic()
    published = publish(env, replay(workload.path))
    wait_for_depth(env, published)
    print(f"  published {published:,} events in {time.monotonic() - started:.1f} s", flush=True)
    return published


def run_drain(
    env: BenchEnv,
    expected: int,
    batch_size: int,
    prefetch: int,
    idle_seconds: float,
    profile: str | None = None,
    profile_out: Path | None = None,
    drain_impl: str | None = None,
) -> dict:
    """Drain the measured queue in a child process; returns its measurements."""
    with tempfile.TemporaryDirectory(prefix="latam-bench-") as tmp:
        result_path = Path(tmp) / "result.json"
        spec = {
            "amqp_url": env.amqp_url,
            "warehouse_url": env.warehouse_url,
            "prefix": env.topo.prefix,
            "family": env.family,
            "database": env.database,
            "batch_size": batch_size,
            "prefetch": prefetch,
            "idle_seconds": idle_seconds,
            "result": str(result_path),
        }
        if drain_impl:
            spec["drain_impl"] = drain_impl
        if profile == "cprofile":
            spec["cprofile"] = str(profile_out)
        cmd = [sys.executable, "-m", "bench.drain_run", json.dumps(spec)]
        if profile == "py-spy":
            # --idle: also sample time spent blocked on the broker or Postgres (wall clock)
            cmd = [_py_spy(), "record", "--idle", "--function", "--format", "raw", "--rate", "250"]
            cmd += ["--output", str(profile_out), "--", sys.executable, "-m", "bench.drain_run"]
            cmd += [json.dumps(spec)]
        pythonpath = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": pythonpath})
        try:
            proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        if proc.returncode != 0 or not result_path.exists():
            raise RuntimeError(f"the drain process failed (exit {proc.returncode})")
        result = json.loads(result_path.read_text())
    if result["received"] != expected:
        raise RuntimeError(
            f"the drain received {result['received']} of {expected} messages "
            f"(stop reason: {result['stop_reason']!r}; try a larger --idle-seconds)"
        )
    written = sum(raw_row_counts(env).values())
    reported = result["inserted"] + result["quarantined"] - result["quarantine_duplicates"]
    if written != reported:
        raise RuntimeError(f"raw tables hold {written} rows, the drain reported {reported}")
    return result


def _py_spy() -> str:
    found = shutil.which("py-spy")
    if not found:
        raise SystemExit("py-spy is not on PATH (pip install py-spy, anywhere on PATH will do)")
    return found


def describe_drain(label: str, d: dict) -> str:
    return (
        f"  {label} (batch {d['batch_size']}, prefetch {d['prefetch']}): {d['rate']:,.0f} msg/s "
        f"({d['measured_messages']:,} msgs in {d['measured_seconds']:.2f} s to the last full "
        f"batch; end to end {d['end_to_end_rate']:,.0f} msg/s; {d['batches']} batches of "
        f"{d['batch_size_min']}-{d['batch_size_max']}; peak RSS {d['peak_rss_mb']:.0f} MB; "
        f"CPU us/msg {d['cpu_us_per_msg']})"
    )


def rate_benchmark(env: BenchEnv, args: argparse.Namespace, workload: Workload) -> dict:
    """Bare consumer, then the drain, on the same N messages from the same queue.

    With --repeat the two alternate, and medians are compared, so that load from other processes
    on the machine weighs on both sides alike.
    """
    bares: list[dict] = []
    drains: list[dict] = []
    n = workload.count
    for round_no in range(1, args.repeat + 1):
        if args.repeat > 1:
            print(f"round {round_no} of {args.repeat}", flush=True)
        print("bare pika consumer: prefetch 2000, ack every 2000 (multiple=True)", flush=True)
        fill_queue(env, workload)
        bare = bare_consume(env, n)
        print(
            f"  bare: {bare['rate']:,.0f} msg/s ({n:,} msgs in {bare['seconds']:.2f} s; "
            f"CPU us/msg {bare['cpu_us_per_msg']})",
            flush=True,
        )
        print("drain_queue: DrainConfig defaults except idle_seconds", flush=True)
        fill_queue(env, workload)
        reset_raw_tables(env)
        drain = run_drain(
            env, n, args.batch_size, args.prefetch, args.idle_seconds, drain_impl=args.drain_impl
        )
        print(describe_drain("drain", drain), flush=True)
        bares.append(bare)
        drains.append(drain)
    bare_rate = statistics.median(b["rate"] for b in bares)
    drain_rate = statistics.median(d["rate"] for d in drains)
    # each drain is compared with the bare run just before it: load drifts between rounds
    round_ratios = [d["rate"] / b["rate"] for b, d in zip(bares, drains, strict=True)]
    ratio = statistics.median(round_ratios)
    verdict = "PASS" if ratio >= GOAL_RATIO else "FAIL"
    print(f"bare consumer: {bare_rate:,.0f} msg/s")
    print(f"drain:         {drain_rate:,.0f} msg/s")
    if len(round_ratios) > 1:
        print(f"ratio per round: {', '.join(f'{r:.2f}' for r in round_ratios)} (median below)")
    print(f"ratio drain/bare: {ratio:.2f} (goal >= {GOAL_RATIO}): {verdict}", flush=True)
    cpu_ratio = cpu_ratio_estimate(bares, drains)
    if cpu_ratio is not None:
        print(f"CPU-time ratio estimate (serial drain, idle machine): {cpu_ratio:.2f}", flush=True)
    return {
        "source": workload.source,
        "mix": workload.mix,
        "events": n,
        "rounds": args.repeat,
        "bare_msg_s": round(bare_rate),
        "drain_msg_s": round(drain_rate),
        "ratio": round(ratio, 3),
        "goal_ratio": GOAL_RATIO,
        "ratio_verdict": verdict,
        "cpu_ratio_estimate": cpu_ratio,
        "round_ratios": [round(r, 3) for r in round_ratios],
        "bare": bares,
        "drain": drains,
    }


def cpu_ratio_estimate(bares: list[dict], drains: list[dict]) -> float | None:
    """The ratio predicted from CPU time alone, which other load on the machine barely moves.

    The bare consumer's wall time per message is about its own CPU time (the broker works on the
    other core); the drain waits for Postgres, so its wall time is its own CPU time plus that of
    its Postgres backend. Valid while the drain writes synchronously.
    """
    try:
        bare = statistics.median(b["cpu_us_per_msg"]["consumer_process"] for b in bares)
        drain = statistics.median(
            d["cpu_us_per_msg"]["drain_process"] + d["cpu_us_per_msg"]["postgres_backend"]
            for d in drains
        )
    except (KeyError, TypeError):  # no /proc figures (another OS, Postgres elsewhere)
        return None
    return round(bare / drain, 3) if drain else None


def variants_benchmark(
    env: BenchEnv, args: argparse.Namespace, workload: Workload, bare_rate: float
) -> list[dict]:
    """The same drain under other batch sizes and prefetch windows."""
    rows = []
    for spec in args.variants.split(","):
        batch, prefetch = (int(x) for x in spec.lower().split("x"))
        if prefetch < batch:
            print(f"  skip {spec}: a prefetch below the batch size stalls every batch")
            continue
        n = fill_queue(env, workload)
        reset_raw_tables(env)
        d = run_drain(env, n, batch, prefetch, args.idle_seconds, drain_impl=args.drain_impl)
        d["ratio"] = round(d["rate"] / bare_rate, 3)
        print(describe_drain("variant", d) + f" ratio {d['ratio']:.2f}", flush=True)
        rows.append(d)
    return rows


def profile_benchmark(
    env: BenchEnv, args: argparse.Namespace, workload: Workload, out_dir: Path
) -> dict:
    """Drain once under a profiler and print where the time goes."""
    n = fill_queue(env, workload)
    reset_raw_tables(env)
    suffix = "prof" if args.profile == "cprofile" else "txt"
    out = out_dir / f"drain-{args.profile}.{suffix}"
    d = run_drain(
        env,
        n,
        args.batch_size,
        args.prefetch,
        args.idle_seconds,
        args.profile,
        profile_out=out,
        drain_impl=args.drain_impl,
    )
    print(describe_drain(f"profiled drain ({args.profile}, slower than unprofiled)", d))
    if args.profile == "cprofile":
        print_cprofile(out)
    else:
        print_collapsed(out)
    print(f"  profile written to {out}")
    return {"tool": args.profile, "file": str(out), "drain": d}


def print_cprofile(path: Path, top: int = 30) -> None:
    buf = io.StringIO()
    stats = pstats.Stats(str(path), stream=buf).strip_dirs()
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top // 2)
    print(buf.getvalue())


def print_collapsed(path: Path, top: int = 30, focus: str = "drain_queue ") -> None:
    """Summarise py-spy's collapsed stacks: share of the drain's wall time per function.

    Only samples inside `drain_queue` count, so process start-up and imports are left out.
    """
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        starts = [i for i, frame in enumerate(frames) if frame.startswith(focus)]
        if not starts:
            continue
        frames = frames[starts[0] :]
        samples = int(count)
        total += samples
        for frame in set(frames):
            inclusive[frame] += samples
        own[frames[-1]] += samples
    if not total:
        print("  no samples inside drain_queue")
        return
    for title, counter in (("inclusive (cumulative)", inclusive), ("self", own)):
        print(f"  top functions by {title} share of {total} wall-clock samples in drain_queue:")
        for frame, samples in counter.most_common(top):
            print(f"    {100 * samples / total:5.1f}%  {frame}")


def memory_benchmark(env: BenchEnv, args: argparse.Namespace, workload: Workload) -> dict:
    """Drain a large queue in a child process and report its peak resident set."""
    print(f"memory: drain of {workload.count:,} messages in a child process", flush=True)
    n = fill_queue(env, workload)
    reset_raw_tables(env)
    d = run_drain(
        env, n, args.batch_size, args.prefetch, args.idle_seconds, drain_impl=args.drain_impl
    )
    print(describe_drain("drain", d), flush=True)
    peak = d["peak_rss_mb"]
    verdict = "PASS" if peak < GOAL_PEAK_RSS_MB else "FAIL"
    print(f"peak RSS of the drain: {peak:.0f} MB (goal < {GOAL_PEAK_RSS_MB:.0f} MB): {verdict}")
    return {
        "source": workload.source,
        "mix": workload.mix,
        "events": n,
        "peak_rss_mb": peak,
        "goal_peak_rss_mb": GOAL_PEAK_RSS_MB,
        "memory_verdict": verdict,
        "drain_msg_s": round(d["rate"]),
        "drain": d,
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench.ingest", description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=200_000, help="messages per rate run")
    defaults = DrainConfig()
    p.add_argument(
        "--batch-size", type=int, default=defaults.batch_size, help="DrainConfig.batch_size"
    )
    p.add_argument("--prefetch", type=int, default=defaults.prefetch, help="DrainConfig.prefetch")
    p.add_argument(
        "--idle-seconds",
        type=float,
        default=2.0,
        help="DrainConfig.idle_seconds: how long the drain waits for more before it stops "
        "(not part of the measured time; a deep quorum queue on a busy broker can take more "
        "than a second to deliver its first message)",
    )
    p.add_argument(
        "--repeat", type=int, default=1, help="alternate bare and drain runs this many times"
    )
    p.add_argument("--memory", action="store_true", help="measure peak RSS instead of the rate")
    p.add_argument("--memory-events", type=int, default=1_000_000, help="messages in --memory")
    p.add_argument(
        "--variants",
        nargs="?",
        const=DEFAULT_VARIANTS,
        default=None,
        metavar="BxP,...",
        help=f"also drain with these batch x prefetch settings (default {DEFAULT_VARIANTS})",
    )
    p.add_argument(
        "--profile",
        choices=("cprofile", "py-spy"),
        help="also run one drain under a profiler and print the top functions",
    )
    p.add_argument("--profile-dir", type=Path, default=Path(tempfile.gettempdir()))
    p.add_argument(
        "--drain-impl",
        metavar="MODULE:FUNCTION",
        help="measure a candidate with drain_queue's signature instead (importable from PYTHONPATH)",
    )
    p.add_argument(
        "--source",
        choices=("auto", "simulator", "fallback"),
        default="auto",
        help="events from latam_dagster.simulator (auto: when installed) or bench.events",
    )
    p.add_argument("--seed", type=int, default=42)
    add_service_options(p)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    summary: dict = {"benchmark": "ingest"}
    with (
        tempfile.TemporaryDirectory(prefix="latam-bench-events-") as tmp,
        bench_environment(args.amqp_url, args.pg_url) as env,
    ):
        print(
            f"ingest benchmark: queue {env.queue} (all event types, real routing keys), "
            f"database {env.database}",
            flush=True,
        )
        count = args.memory_events if args.memory else args.events
        workload = prepare(args.seed, count, Path(tmp), args.source)
        if args.memory:
            summary["memory"] = memory_benchmark(env, args, workload)
        else:
            rate = rate_benchmark(env, args, workload)
            summary["rate"] = rate
            if args.variants:
                print("variants:", flush=True)
                summary["variants"] = variants_benchmark(env, args, workload, rate["bare_msg_s"])
            if args.profile:
                summary["profile"] = profile_benchmark(env, args, workload, args.profile_dir)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
