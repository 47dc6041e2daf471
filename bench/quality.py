"""Data-quality benchmark: the GX suite of curated.fact_flight against plain SQL, 100k and 1M rows.

    .venv/bin/python -m bench.quality                          # 100k then 1M rows, 3 repeats
    .venv/bin/python -m bench.quality --sizes 200000 --repeats 1   # a quick look
    .venv/bin/python -m bench.quality --bad-rows 50            # with failing rows (second pass)

1. Creates a private warehouse database `latam_bench_quality_<hex>` (migrated; dropped at the end,
   also on error or Ctrl-C), loads curated.dim_airport from `airportsdata`, and generates
   fact_flight rows with set-based SQL: real airport codes, unique keys, plausible schedules,
   delays, statuses and seat capacities, i.e. a table that passes every check.
2. For each size, in two fresh processes (so that peak memory is the process's own):
   - **GX**: the full `curated.fact_flight` suite through `GreatExpectationsResource.validate`,
     exactly what the Dagster check does (GX validation, history rows in quality.*, Data Docs).
     GX and Dagster are imported before timing; the first validation (context, reflection) is
     reported apart, the figure is the median of the next `--repeats`.
   - **plain SQL**: the same metrics (rows, nulls and failing rows of every expectation) computed
     by hand-written SQL over psycopg2: one aggregate scan with a FILTER per row-wise rule, one
     GROUP BY per uniqueness rule, one count per query rule. Median of `--repeats`.
   Both report every expectation's failing-row count; they must agree.
3. Prints time and peak RSS per size, the GX/SQL time ratio (goal <= 3) and the growth of GX's
   peak RSS from the smallest to the largest size (goal: flat, < 10%: nothing is loaded into
   Python but counts and a bounded sample).

The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/quality.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import json
import os
import resource
import secrets
import statistics
import subprocess
import tempfile
import time
from urllib.parse import urlsplit, urlunsplit

from bench.harness import add_service_options
from latam_dagster.db import connect, migrate

GOAL_RATIO = 3.0
GOAL_MEMORY_GROWTH = 0.10
CHUNK = 200_000

# Rows h of fact_flight: unique (carrier, number, date), distinct origin and destination among the
# first 300 IATA airports of dim_airport, schedules 45..645 min long, delays -10..+96 min.
FACT_SQL = """
WITH codes AS (
    SELECT array_agg(iata ORDER BY iata) AS c, count(*)::int AS n
    FROM (SELECT iata FROM curated.dim_airport ORDER BY iata LIMIT 300) AS a
),
f AS (
    SELECT h,
           (ARRAY['LA', 'JJ', '4M', 'XL', 'H2'])[1 + (h / 2000) %% 5] AS carrier,
           (1 + (h / 10000) %% 9999)::int AS num,
           DATE '2020-01-01' + (h %% 2000)::int AS day,
           codes.c[1 + h %% codes.n] AS origin,
           codes.c[1 + (h %% codes.n + 1 + (h / codes.n) %% (codes.n - 1)) %% codes.n]
               AS destination,
           CASE WHEN h %% 37 = 0 THEN 'cancelled' WHEN h %% 101 = 0 THEN 'diverted'
                WHEN h %% 11 = 0 THEN 'scheduled' ELSE 'arrived' END AS status,
           (h %% 107 - 10)::numeric AS dep_delay,
           (h %% 21 - 10)::numeric AS extra_delay,
           (ARRAY[174, 186, 220, 238, 313])[1 + h %% 5] AS seats
    FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS h, codes
)
INSERT INTO curated.fact_flight (
    flight_key, carrier, flight_number, flight_date, origin, destination, status,
    scheduled_departure, scheduled_arrival, actual_departure, actual_arrival,
    dep_delay_min, arr_delay_min, cancelled, diverted, arrived, on_time, tail_number,
    seat_capacity, distance_km, first_event_time, last_event_time, event_count
)
SELECT carrier || num || '-' || to_char(day, 'YYYY-MM-DD') || '-' || origin,
       carrier, num, day, origin, destination, status,
       sd, sa,
       CASE WHEN status IN ('arrived', 'diverted') THEN sd + make_interval(mins => dep_delay::int) END,
       CASE WHEN status = 'arrived' THEN sa + make_interval(mins => (dep_delay + extra_delay)::int) END,
       CASE WHEN status IN ('arrived', 'diverted') THEN dep_delay END,
       CASE WHEN status = 'arrived' THEN dep_delay + extra_delay END,
       status = 'cancelled', status = 'diverted', status = 'arrived',
       CASE WHEN status = 'arrived' THEN dep_delay + extra_delay < 15 END,
       'CC-' || lpad((h %% 400)::text, 3, '0'), seats, 300 + h %% 9000,
       sd - interval '2 days', sd + interval '4 hours', 6
FROM (SELECT f.*,
             (day + time '05:00' + make_interval(mins => 5 * (h %% 200)::int)) AT TIME ZONE 'UTC'
                 AS sd,
             (day + time '05:00' + make_interval(mins => 5 * (h %% 200)::int + 45 + (h %% 600)::int))
                 AT TIME ZONE 'UTC' AS sa
      FROM f) AS rows
"""

BAD_ROWS_SQL = """
UPDATE curated.fact_flight SET seat_capacity = -abs(seat_capacity), dep_delay_min = 5000
WHERE flight_key IN (SELECT flight_key FROM curated.fact_flight ORDER BY flight_key LIMIT %s)
"""


def _with_db(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def _exec(url: str, sql: str, params: object = None, autocommit: bool = False) -> None:
    conn = connect(url)
    try:
        conn.autocommit = autocommit
        with conn.cursor() as cur:
            cur.execute(sql, params)
        if not autocommit:
            conn.commit()
    finally:
        conn.close()


def grow_fact_flight(url: str, have: int, want: int) -> float:
    """Insert rows have..want-1; returns seconds."""
    started = time.perf_counter()
    for first in range(have, want, CHUNK):
        last = min(first + CHUNK, want) - 1
        _exec(url, FACT_SQL, {"first": first, "last": last})
    _exec(url, "VACUUM ANALYZE curated.fact_flight", autocommit=True)
    return time.perf_counter() - started


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- workers (run in their own process) ----------------------------------------------------------


def worker_gx(url: str, repeats: int) -> dict:
    from latam_dagster.quality.gx_resource import GreatExpectationsResource
    from latam_dagster.tables import REGISTRY

    fact_flight = REGISTRY.suite("curated.fact_flight")

    with tempfile.TemporaryDirectory(prefix="bench_quality_") as tmp:
        gx = GreatExpectationsResource(
            warehouse_url=url, quality_dir=f"{tmp}/quality", data_docs_dir=f"{tmp}/docs"
        )
        gx.engine()  # imports GX and builds the context: not what is measured
        rss_ready = peak_rss_mb()
        times, outcome = [], None
        for _ in range(repeats + 1):
            started = time.perf_counter()
            outcome = gx.validate(fact_flight, run_id="bench")
            times.append(time.perf_counter() - started)
    counts = {
        f"e{i}": e.unexpected_count
        for i, e in enumerate(e for r in outcome.rules for e in r.expectations)
    }
    return {
        "first_s": round(times[0], 3),
        "median_s": round(statistics.median(times[1:]), 3),
        "times_s": [round(t, 3) for t in times],
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "rss_before_validation_mb": round(rss_ready, 1),
        "unexpected": counts,
        "success": outcome.success,
    }


def plain_sql(suite) -> list[tuple[list[str], str]]:
    """Queries computing every expectation's failing rows (and the null counts GX also reads)."""
    from latam_dagster.quality.failing_rows import Relation, rejected_condition

    rel = Relation(suite.table)
    expectations = [e for r in suite.rules for e in r.expectations]
    labels = [f"e{i}" for i in range(len(expectations))]
    scan, queries = ["count(*) AS rows"], []
    nulls = sorted({c for e in expectations for c in e.columns})
    scan += [f"count(*) FILTER (WHERE {c} IS NULL) AS null_{c}" for c in nulls]
    scan_labels = ["rows", *(f"null:{c}" for c in nulls)]
    for label, e in zip(labels, expectations, strict=True):
        kw = dict(e.rendered("TRUE"))
        if e.kind in ("ExpectColumnValuesToBeUnique", "ExpectCompoundColumnsToBeUnique"):
            cols = ", ".join(e.columns)
            queries.append(
                (
                    [label],
                    f"SELECT coalesce(sum(n), 0) FROM (SELECT count(*) AS n FROM {suite.table} "
                    f"WHERE NOT ({' AND '.join(f'{c} IS NULL' for c in e.columns)}) "
                    f"GROUP BY {cols} HAVING count(*) > 1) AS d",
                )
            )
        elif e.kind == "UnexpectedRowsExpectation":
            query = kw["unexpected_rows_query"].replace("{batch}", f"{suite.table} AS b")
            queries.append(([label], f"SELECT count(*) FROM ({query}) AS q"))
        else:
            scan.append(f"count(*) FILTER (WHERE {rejected_condition(e, rel, kw)})")
            scan_labels.append(label)
    return [(scan_labels, f"SELECT {', '.join(scan)} FROM {suite.table}"), *queries]


def worker_sql(url: str, repeats: int) -> dict:
    from latam_dagster.tables import REGISTRY

    fact_flight = REGISTRY.suite("curated.fact_flight")

    queries = plain_sql(fact_flight)
    conn = connect(url)
    times, values = [], {}
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            for _ in range(repeats):
                started = time.perf_counter()
                for labels, sql in queries:
                    cur.execute(sql)
                    values.update(zip(labels, cur.fetchone(), strict=True))
                times.append(time.perf_counter() - started)
    finally:
        conn.close()
    return {
        "median_s": round(statistics.median(times), 3),
        "times_s": [round(t, 3) for t in times],
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "unexpected": {k: int(v) for k, v in values.items() if k.startswith("e")},
        "queries": len(queries),
    }


def run_worker(kind: str, url: str, repeats: int) -> dict:
    env = {**os.environ, "GX_ANALYTICS_ENABLED": "false", "DAGSTER_DISABLE_TELEMETRY": "1"}
    cmd = [sys.executable, "-m", "bench.quality", "--worker", kind, "--url", url]
    cmd += ["--repeats", str(repeats)]
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=root, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} worker failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- driver ----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000,1000000", help="fact_flight row counts")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--bad-rows", type=int, default=0, help="rows that fail two rules")
    add_service_options(parser, amqp=False)
    parser.add_argument("--worker", choices=("gx", "sql"), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        work = worker_gx if args.worker == "gx" else worker_sql
        print(json.dumps(work(args.url, args.repeats)))
        return 0

    sizes = sorted(int(s) for s in args.sizes.split(","))
    database = f"latam_bench_quality_{secrets.token_hex(4)}"
    url = _with_db(args.pg_url, database)
    results: list[dict] = []
    try:
        from latam_dagster.transform.airports import load_dim_airport

        migrate(url)
        load_dim_airport(url)
        have = 0
        for size in sizes:
            seconds = grow_fact_flight(url, have, size)
            have = size
            if args.bad_rows:
                _exec(url, BAD_ROWS_SQL, (args.bad_rows,))
            print(f"fact_flight: {size:,} rows (generated in {seconds:.1f}s)", flush=True)
            sql = run_worker("sql", url, args.repeats)
            gx = run_worker("gx", url, args.repeats)
            agree = gx["unexpected"] == sql["unexpected"]
            row = {
                "rows": size,
                "gx_s": gx["median_s"],
                "gx_first_s": gx["first_s"],
                "sql_s": sql["median_s"],
                "ratio": round(gx["median_s"] / sql["median_s"], 2),
                "gx_peak_rss_mb": gx["peak_rss_mb"],
                "gx_rss_before_validation_mb": gx["rss_before_validation_mb"],
                "sql_peak_rss_mb": sql["peak_rss_mb"],
                "counts_agree": agree,
                "gx_success": gx["success"],
                "failing_rows": sum(sql["unexpected"].values()),
            }
            results.append(row)
            print(
                f"  GX suite {row['gx_s']:.2f}s (first {row['gx_first_s']:.2f}s), "
                f"plain SQL {row['sql_s']:.2f}s ({sql['queries']} queries): "
                f"ratio {row['ratio']:.2f}; peak RSS GX {row['gx_peak_rss_mb']:.0f} MB "
                f"({row['gx_rss_before_validation_mb']:.0f} MB before validating), "
                f"SQL {row['sql_peak_rss_mb']:.0f} MB; counts agree: {agree}",
                flush=True,
            )
    finally:
        try:
            _exec(
                _with_db(args.pg_url, "postgres"),
                f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)',
                autocommit=True,
            )
        except Exception as exc:  # the figures matter more than the cleanup message
            print(f"could not drop {database}: {exc}", file=sys.stderr)

    largest, smallest = results[-1], results[0]
    growth = (largest["gx_peak_rss_mb"] - smallest["gx_peak_rss_mb"]) / smallest["gx_peak_rss_mb"]
    summary = {
        "benchmark": "quality",
        "sizes": results,
        "ratio_at_largest": largest["ratio"],
        "goal_ratio": GOAL_RATIO,
        "ratio_ok": largest["ratio"] <= GOAL_RATIO,
        "gx_peak_rss_growth": round(growth, 3),
        "goal_memory_growth": GOAL_MEMORY_GROWTH,
        "memory_ok": growth < GOAL_MEMORY_GROWTH,
        "counts_agree": all(r["counts_agree"] for r in results),
    }
    print(
        f"ratio at {largest['rows']:,} rows: {largest['ratio']:.2f} (goal <= {GOAL_RATIO:g}); "
        f"GX peak RSS {smallest['gx_peak_rss_mb']:.0f} -> {largest['gx_peak_rss_mb']:.0f} MB "
        f"({growth:+.1%}, goal < {GOAL_MEMORY_GROWTH:.0%})"
    )
    print(json.dumps(summary))
    return 0 if summary["ratio_ok"] and summary["memory_ok"] and summary["counts_agree"] else 1


if __name__ == "__main__":
    sys.exit(main())
