"""End-to-end freshness: how long after publication an event is queryable through the API.

    .venv/bin/python -m bench.freshness                      # 500 events/s: 60 s, then 120 s measured
    .venv/bin/python -m bench.freshness --rate 200 --duration 120

Runs the demo stack on a private warehouse, Dagster instance and topology: the Dagster daemon
(queue sensors -> drain runs -> curated tables, mart sensor), and the API under gunicorn. A
publisher sends simulated traffic at a steady rate (first `--steady` seconds unmeasured, so the
figures describe the steady state, then `--duration` seconds measured); once a second it slips in a probe: a real
flight_status event for a flight no simulated source uses (LA9000+). A poller asks the API every
0.5 s which probes it can see and records publish -> queryable latency. The same probes are
looked up in curated.fact_flight directly, the bare baseline: the API adds the difference.

Prints p50/p95/max of both and their ratio, and what auditing every micro-batch before it is
published cost (time per batch, share of the curated steps and of the machine's CPU); the last
line is one JSON object with every figure. Goal: p95 <= 30 s with default settings, every batch
audited.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/freshness.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import json
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import orjson

from latam_dagster.db import connect, connection
from latam_dagster.demo import stop_code_servers
from latam_dagster.ingest.publish import PERSISTENT
from latam_dagster.ingest.topology import Topology, delete_topology, open_connection
from latam_dagster.settings import get_settings, normalize_pg_url
from latam_dagster.simulator import generate

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PROBE_CARRIER, PROBE_ORIGIN, PROBE_DEST, PROBE_FIRST = "LA", "SCL", "PMC", 9000
GOAL_P95_S = 30.0


@dataclass
class Probes:
    """Publish time of every probe and when the API / the database first showed it."""

    published: dict[int, float] = field(default_factory=dict)
    via_api: dict[int, float] = field(default_factory=dict)
    via_sql: dict[int, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def pending(self) -> int:
        with self.lock:
            return sum(1 for n in self.published if n not in self.via_api)

    def latencies(self, seen: dict[int, float]) -> list[float]:
        with self.lock:
            return sorted(seen[n] - self.published[n] for n in seen if n in self.published)


def probe_event(number: int, flight_date: str) -> bytes:
    """A contract-valid flight_status event for probe flight LA<number>."""
    now = datetime.now(UTC)
    return orjson.dumps(
        {
            "message_id": str(uuid.uuid4()),
            "schema_version": 1,
            "event_type": "flight_status",
            "event_time": now.isoformat(),
            "source_system": "bench_probe",
            "payload": {
                "carrier": PROBE_CARRIER,
                "flight_number": number,
                "flight_date": flight_date,
                "origin": PROBE_ORIGIN,
                "destination": PROBE_DEST,
                "status": "scheduled",
                "scheduled_departure": (now + timedelta(hours=2)).isoformat(),
                "scheduled_arrival": (now + timedelta(hours=4)).isoformat(),
                "tail_number": "CC-BXF",
                "seat_capacity": 174,
            },
        }
    )


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


class Stack:
    """The demo processes on a private warehouse, Dagster instance and topology."""

    def __init__(self, tag: str, api_port: int) -> None:
        base = get_settings()
        self.home = Path(tempfile.mkdtemp(prefix=f"latam-fresh-{tag}-"))
        admin = base.dsn.rsplit("/", 1)[0]
        self.warehouse_url = f"{admin}/latam_bfresh_{tag}"
        self.dagster_url = f"{admin}/latam_bfresh_{tag}_dagster"
        self.topology = Topology(prefix=f"bf{tag}", delivery_limit=base.delivery_limit)
        self.amqp_url = base.amqp_url
        self.api = f"http://127.0.0.1:{api_port}"
        self.env = {
            **os.environ,
            "DAGSTER_HOME": str(self.home),
            "LATAM_WAREHOUSE_URL": self.warehouse_url,
            "LATAM_DAGSTER_PG_URL": normalize_pg_url(self.dagster_url),
            "LATAM_TOPOLOGY_PREFIX": self.topology.prefix,
            "LATAM_API_HOST": "127.0.0.1",
            "LATAM_API_PORT": str(api_port),
            "GX_ANALYTICS_ENABLED": "false",
            "DAGSTER_DISABLE_TELEMETRY": "1",
        }
        self.procs: list[subprocess.Popen] = []

    def start(self) -> str:
        """Prepare everything, start daemon and API; returns an API key."""
        from api_service.auth import SCOPES, create_key

        subprocess.run([str(BIN / "latam"), "init"], cwd=ROOT, env=self.env, check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
        with connection(self.warehouse_url) as conn:
            key = create_key(conn, "bench-freshness", list(SCOPES))
        self._spawn("daemon", [str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"])
        self._spawn("api", [str(BIN / "gunicorn"), "-c", "python:api_service.gunicorn_conf",
                            "api_service:create_app()"])  # fmt: skip
        deadline = time.monotonic() + 60
        while not self._ready():
            if time.monotonic() > deadline:
                raise RuntimeError(f"the API did not become ready; see {self.home}/api.log")
            time.sleep(0.5)
        return key

    def _spawn(self, name: str, args: list[str]) -> None:
        log = open(self.home / f"{name}.log", "wb")  # noqa: SIM115 (lives as long as the process)
        self.procs.append(
            subprocess.Popen(
                args,
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        )

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.api}/readyz", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def stop(self, keep: bool = False) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        stop_code_servers(self.home)  # they live in sessions of their own
        if keep:
            print(f"kept: {self.warehouse_url}, {self.dagster_url}, {self.home}")
            return
        try:
            delete_topology(self.amqp_url, self.topology)
        except Exception as exc:  # the broker may be gone; say so and go on cleaning
            print(f"warning: topology not deleted: {exc}", file=sys.stderr)
        admin = connect(self.warehouse_url.rsplit("/", 1)[0] + "/postgres")
        admin.autocommit = True
        with admin.cursor() as cur:
            for url in (self.warehouse_url, self.dagster_url):
                cur.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
        admin.close()
        results = ROOT / "bench" / "results" / f"freshness-{self.topology.prefix}"
        results.mkdir(parents=True, exist_ok=True)
        for log in self.home.glob("*.log"):
            shutil.copy(log, results / log.name)
        print(f"  logs kept in {results}")
        shutil.rmtree(self.home, ignore_errors=True)


def audit_figures(warehouse_url: str, dagster_url: str, since: float, window_s: float) -> dict:
    """What auditing every micro-batch cost: the audits' own time (quality.audit_batch) against
    the curated steps that contain them (Dagster event log) and against the machine's CPU time
    over the measured window (the audit's statements are Postgres CPU, run inside the step)."""
    with connection(warehouse_url) as conn, conn.cursor() as cur:
        cur.execute(
            """SELECT count(*), coalesce(sum(seconds), 0), coalesce(sum(audited_rows), 0),
                      coalesce(sum(held_rows), 0), count(*) FILTER (WHERE blocked),
                      coalesce(percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds), 0),
                      coalesce(percentile_cont(0.95) WITHIN GROUP (ORDER BY seconds), 0)
               FROM quality.audit_batch WHERE audited_at >= to_timestamp(%s)""",
            (since,),
        )
        batches, audit_s, rows, held, blocked, p50, p95 = cur.fetchone()
    with connection(dagster_url) as conn, conn.cursor() as cur:
        cur.execute(
            """SELECT coalesce(sum(extract(epoch FROM b.timestamp - a.timestamp)), 0)
               FROM event_logs a JOIN event_logs b
                 ON b.run_id = a.run_id AND b.step_key = a.step_key
                AND b.dagster_event_type = 'STEP_SUCCESS'
               WHERE a.dagster_event_type = 'STEP_START' AND a.step_key LIKE 'curated__%%'
                 AND a.timestamp >= to_timestamp(%s) AT TIME ZONE 'UTC'""",
            (since,),
        )
        step_s = float(cur.fetchone()[0])
    cpu_s = window_s * (os.cpu_count() or 1)
    return {
        "batches": int(batches),
        "rows_audited": int(rows),
        "rows_held": int(held),
        "blocked": int(blocked),
        "audit_s": round(float(audit_s), 2),
        "audit_p50_ms": round(float(p50) * 1000, 1),
        "audit_p95_ms": round(float(p95) * 1000, 1),
        "curated_steps_s": round(step_s, 2),
        "share_of_curated_steps": round(float(audit_s) / step_s, 4) if step_s else None,
        "share_of_machine_cpu": round(float(audit_s) / cpu_s, 4) if cpu_s else None,
    }


def drain_timeline(dagster_url: str, since: float) -> dict:
    """Where a probe's time goes, from the Dagster event log of the drain runs after `since`:
    the gap between one drain step's end and the next one's start (nothing drains meanwhile),
    each drain's length (the budget), and drain end -> fact_flight updated in the same run."""
    db = connect(dagster_url)
    try:
        with db.cursor() as cur:
            cur.execute(
                """SELECT e.run_id, e.step_key, e.dagster_event_type,
                          extract(epoch FROM e.timestamp)
                   FROM event_logs e JOIN runs r ON r.run_id = e.run_id
                   WHERE r.pipeline_name = 'drain_job'
                     AND e.dagster_event_type IN ('STEP_START', 'STEP_SUCCESS', 'RUN_START')
                     AND e.timestamp >= to_timestamp(%s) AT TIME ZONE 'UTC'
                   ORDER BY e.id""",
                (since,),
            )
            events = cur.fetchall()
    finally:
        db.close()
    drains: dict[str, list[float]] = {}
    fact: dict[str, float] = {}
    for run_id, step, kind, at in events:
        at = float(at)
        if step == "drain_queues":
            drains.setdefault(run_id, []).append(at)
        elif step == "curated__fact_flight" and kind == "STEP_SUCCESS":
            fact[run_id] = at
    spans = sorted((v[0], v[-1], r) for r, v in drains.items() if len(v) >= 2)
    gaps = [b[0] - a[1] for a, b in zip(spans, spans[1:], strict=False)]
    lengths = [end - start for start, end, _ in spans]
    to_fact = [fact[r] - end for _start, end, r in spans if r in fact]

    def figures(values: list[float]) -> dict:
        return {
            "n": len(values),
            "p50_s": round(percentile(sorted(values), 50), 2),
            "max_s": round(max(values), 2) if values else float("nan"),
        }

    return {
        "drain_gap": figures(gaps),
        "drain_length": figures(lengths),
        "drain_end_to_fact_flight": figures(to_fact),
    }


def publish_loop(stack: Stack, probes: Probes, rate: float, duration: float, every: float,
                 sim: Iterator, flight_date: str, stop: threading.Event,
                 first_probe: int) -> tuple[int, int]:  # fmt: skip
    """Traffic from the simulator `sim` at `rate` messages/s with a probe every `every` seconds.

    Returns (messages sent, next free probe number)."""
    interval = 1.0 / rate
    sent = 0
    next_probe = first_probe
    began = time.perf_counter()
    next_probe_at = began
    # one unconfirmed channel, like a busy source system: per-message confirms would cap the rate
    conn = open_connection(stack.amqp_url)
    try:
        channel = conn.channel()
        while not stop.is_set():
            now = time.perf_counter()
            if now - began >= duration:
                break
            if now >= next_probe_at:
                body = probe_event(next_probe, flight_date)
                with probes.lock:
                    probes.published[next_probe] = time.time()
                channel.basic_publish(
                    stack.topology.exchange, "flight.bench_probe", body, PERSISTENT
                )
                next_probe += 1
                next_probe_at += every
                sent += 1
                continue
            ahead = began + sent * interval - now
            if ahead > 0:
                conn.sleep(ahead)
            msg = next(sim)
            channel.basic_publish(stack.topology.exchange, msg.routing_key, msg.body, PERSISTENT)
            sent += 1
    finally:
        conn.close()
    return sent, next_probe


def poll_loop(stack: Stack, key: str, probes: Probes, flight_date: str,
              stop: threading.Event) -> None:  # fmt: skip
    """Every 0.5 s: which probes do the API and curated.fact_flight show?"""
    query = urllib.parse.urlencode(
        {
            "flight_date": flight_date,
            "origin": PROBE_ORIGIN,
            "destination": PROBE_DEST,
            "carrier": PROBE_CARRIER,
            "limit": 1000,
        }  # fmt: skip
    )
    request = urllib.request.Request(
        f"{stack.api}/api/v1/flights?{query}", headers={"Authorization": f"Bearer {key}"}
    )
    db = connect(stack.warehouse_url)
    db.autocommit = True
    try:
        while not stop.is_set():
            tick = time.time()
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    rows = json.load(response)["data"]
                api_seen = {r["flight_number"] for r in rows}
            except OSError:
                api_seen = set()
            with db.cursor() as cur:
                cur.execute(
                    """SELECT flight_number FROM curated.fact_flight
                       WHERE carrier = %s AND flight_date = %s AND origin = %s
                         AND destination = %s AND flight_number >= %s""",
                    (PROBE_CARRIER, flight_date, PROBE_ORIGIN, PROBE_DEST, PROBE_FIRST),
                )
                sql_seen = {n for (n,) in cur.fetchall()}
            now = time.time()
            with probes.lock:
                for n in api_seen:
                    if n >= PROBE_FIRST:
                        probes.via_api.setdefault(n, now)
                for n in sql_seen:
                    probes.via_sql.setdefault(n, now)
            stop.wait(max(0.0, 0.5 - (time.time() - tick)))
    finally:
        db.close()


def _summary(label: str, values: list[float]) -> dict:
    figures = {
        "n": len(values),
        "p50_s": round(percentile(values, 50), 2),
        "p95_s": round(percentile(values, 95), 2),
        "max_s": round(max(values), 2) if values else float("nan"),
    }
    print(f"  {label:<34} n={figures['n']:<4} p50 {figures['p50_s']:6.2f} s   "
          f"p95 {figures['p95_s']:6.2f} s   max {figures['max_s']:6.2f} s")  # fmt: skip
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=500.0, help="events per second")
    parser.add_argument("--duration", type=float, default=120.0,
                        help="seconds of measured traffic")  # fmt: skip
    parser.add_argument("--steady", type=float, default=60.0,
                        help="seconds of traffic before the measurement starts, so it sees the "
                             "steady state and not the first runs of a cold stack")  # fmt: skip
    parser.add_argument("--probe-every", type=float, default=1.0, help="seconds between probes")
    parser.add_argument("--systems", type=int, default=12, help="simulated source systems")
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--settle", type=float, default=180.0,
                        help="seconds to wait for the last probes after publishing stops")  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep databases and logs")
    args = parser.parse_args(argv)

    tag = secrets.token_hex(4)
    stack = Stack(tag, api_port=_free_port())
    flight_date = datetime.now(UTC).date().isoformat()
    probes = Probes()
    stop_poll = threading.Event()
    stop_pub = threading.Event()
    settings = get_settings()
    print(f"freshness benchmark: {args.rate:g} events/s for {args.duration:g} s, "
          f"probe every {args.probe_every:g} s (logs in {stack.home})")  # fmt: skip
    print(f"  settings: sensor interval {settings.sensor_interval_seconds} s, drain budget "
          f"{settings.drain_max_seconds:g} s, drain idle stop {settings.drain_idle_seconds:g} s")  # fmt: skip
    try:
        key = stack.start()
        poller = threading.Thread(
            target=poll_loop, args=(stack, key, probes, flight_date, stop_poll), daemon=True
        )
        poller.start()
        # warm-up: the first run of a fresh instance pays for imports and migrations
        started = time.time()
        warm_sim = generate(args.seed, systems=args.systems, rate=1.0)
        _, first = publish_loop(stack, probes, 1.0, 0.5, 10.0, warm_sim, flight_date, stop_pub,
                                PROBE_FIRST)  # fmt: skip
        while not probes.via_api and time.time() - started < 300:
            time.sleep(0.5)
        cold = probes.latencies(probes.via_api)
        print(f"  warm-up probe queryable after {cold[0]:.1f} s" if cold else "  warm-up timed out")
        # one simulated world for the whole run: a second generator would add its own
        # passengers to the same flights and overbook them
        sim = generate(args.seed + 1, systems=args.systems, rate=args.rate)
        if args.steady > 0:  # the same traffic, not measured
            _, first = publish_loop(stack, probes, args.rate, args.steady, args.steady + 1, sim,
                                    flight_date, stop_pub, first)  # fmt: skip
            print(f"  {args.steady:g} s of traffic before measuring (steady state)")
        with probes.lock:
            probes.published.clear()
            probes.via_api.clear()
            probes.via_sql.clear()
        began = time.perf_counter()
        measured_from = time.time()
        sent, _ = publish_loop(stack, probes, args.rate, args.duration, args.probe_every, sim,
                               flight_date, stop_pub, first)  # fmt: skip
        achieved = sent / (time.perf_counter() - began)
        deadline = time.time() + args.settle
        while probes.pending() and time.time() < deadline:
            time.sleep(0.5)
        stop_poll.set()
        poller.join(15)
        timeline = drain_timeline(stack.dagster_url, measured_from)
        audit = audit_figures(
            stack.warehouse_url, stack.dagster_url, measured_from, time.time() - measured_from
        )
    except KeyboardInterrupt:
        stop_pub.set()
        stop_poll.set()
        print("interrupted")
        return 130
    finally:
        stack.stop(keep=args.keep)

    api_latencies = probes.latencies(probes.via_api)
    print(f"  published {sent} messages at {achieved:.0f}/s; "
          f"{len(api_latencies)}/{len(probes.published)} probes queryable")  # fmt: skip
    api = _summary("publish -> queryable via the API", api_latencies)
    sql = _summary("publish -> in curated (bare SQL)", probes.latencies(probes.via_sql))
    ratio = api["p95_s"] / sql["p95_s"] if sql["p95_s"] else float("nan")
    for name, label in (("drain_gap", "gap between drains"), ("drain_length", "drain length"),
                        ("drain_end_to_fact_flight", "drain end -> fact_flight")):  # fmt: skip
        f = timeline[name]
        print(f"  {label:<34} n={f['n']:<4} p50 {f['p50_s']:6.2f} s   max {f['max_s']:6.2f} s")
    print(f"  audit: {audit['batches']} batch(es), {audit['rows_audited']} row(s), "
          f"{audit['rows_held']} held back, {audit['blocked']} blocked; p50 "
          f"{audit['audit_p50_ms']} ms, p95 {audit['audit_p95_ms']} ms per batch; "
          f"{audit['audit_s']} s in all = {100 * (audit['share_of_curated_steps'] or 0):.1f}% of "
          f"the curated steps, {100 * (audit['share_of_machine_cpu'] or 0):.2f}% of the "
          f"machine's CPU time")  # fmt: skip
    verdict = "meets" if api["p95_s"] <= GOAL_P95_S else "misses"
    print(f"  API/SQL p95 ratio {ratio:.2f}; p95 {verdict} the goal of {GOAL_P95_S:g} s")
    print(json.dumps({"benchmark": "freshness", "rate": args.rate, "achieved_rate": round(achieved, 1),
                      "drain_max_seconds": settings.drain_max_seconds,
                      "sensor_interval_seconds": settings.sensor_interval_seconds,
                      "steady_s": args.steady, "duration_s": args.duration, "probes": len(probes.published),
                      "queryable": len(api_latencies), "api": api, "sql": sql, "timeline": timeline,
                      "audit": audit,
                      "api_sql_p95_ratio": round(ratio, 3), "goal_p95_s": GOAL_P95_S,
                      "meets_goal": verdict == "meets"}))  # fmt: skip
    return 0 if verdict == "meets" and len(api_latencies) == len(probes.published) else 1


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


if __name__ == "__main__":
    sys.exit(main())
