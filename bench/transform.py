"""Transformation benchmark: incremental micro-batches against history size, full refresh cost.

    .venv/bin/python -m bench.transform                      # 1M and 5M events of history
    .venv/bin/python -m bench.transform --cache              # keep the loaded histories for next time
    .venv/bin/python -m bench.transform --history 200000 --large 600000   # a quick look

1. Loads `--history` events (1M) straight into raw with set-based SQL (generate_series; RabbitMQ is
   not what is measured here), in the production traffic mix: per flight 6 status events, 18
   passenger events and 16 position reports, 500 flights a day going back in time. Like any bulk
   load it drops the raw indexes first and rebuilds them afterwards.
2. Full refresh of curated.fact_flight, next to a bare single statement doing the same aggregation
   (the SELECT of fact_flight.sql into a new table, same session settings), interleaved three
   times. Goal: ratio <= 2.
3. Loads `--large` events (5M) into a second database the same way and builds both curated layers.
4. Micro-batches of `--batch` new events (10k: 90% flights of the coming days, 10% late events for
   the last three days), each applied to every curated table and the touched mart partitions
   exactly as a drain run does, alternately on the two histories so both see the same background
   load. Goal: the median per-round ratio large/small <= 1.5 (the work grows with the batch, not
   the history).

The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/transform.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import hashlib
import json
import statistics
import time
from datetime import date

import psycopg2

from bench.harness import admin_exec, drop_database, with_database
from latam_dagster.db import connect, load_migrations, migrate
from latam_dagster.transform.airports import load_dim_airport
from latam_dagster.transform.curated import update_all, update_table
from latam_dagster.transform.marts import refresh_pending
from latam_dagster.transform.session import transform_transaction
from latam_dagster.transform.sqlfiles import load_sql

ADMIN_URL = "postgresql://postgres@localhost:5432/postgres"
BENCH_DB = "latam_bench_transform"
EVENTS_PER_FLIGHT = 40  # 6 status + 18 passenger + 16 position
FLIGHTS_PER_DAY = 500
BASE_DAY = date(2026, 11, 27)
GOAL_INCREMENTAL_RATIO = 1.5
GOAL_FULL_REFRESH_RATIO = 2.0
AIRPORTS = (
    "SCL", "LIM", "GRU", "GIG", "BSB", "BOG", "MDE", "EZE", "AEP", "UIO",
    "GYE", "CUZ", "MVD", "ASU", "LPB", "VVI", "PMC", "ANF", "CCP", "MIA",
)  # fmt: skip

# One row per flight h (its key parts, schedule and fate), shared by the three event generators.
# `bench.r(h, salt)` is a deterministic pseudo-random integer in [0, 2^31).
FLIGHTS_CTE = """
WITH flights AS (
    SELECT h, day, num, carrier, origin,
           (%(airports)s::text[])[1 + (o + 1 + bench.r(h, 3) %% 19) %% 20] AS destination,
           sched_dep,
           sched_dep + make_interval(mins => 60 + bench.r(h, 4) %% 400) AS sched_arr,
           make_interval(mins => bench.r(h, 5) %% 60 - 10) AS dep_delay,
           make_interval(mins => bench.r(h, 6) %% 30 - 15) AS extra_arr_delay,
           bench.r(h, 7) %% 100 < 3 AS cancelled,
           'CC-' || lpad((bench.r(h, 8) %% 400)::text, 3, '0') AS tail,
           (ARRAY[174, 186, 220, 238, 313])[1 + bench.r(h, 9) %% 5] AS seats
    FROM (
        SELECT h, day, num, carrier, o, (%(airports)s::text[])[1 + o] AS origin,
               (day + time '05:00' + make_interval(mins => 15 * (h %% 70)::int))
                   AT TIME ZONE 'UTC' AS sched_dep
        FROM (
            SELECT h,
                   %(base)s::date - (h / %(per_day)s)::int + %(day_shift)s AS day,
                   (h %% %(per_day)s + 1 + %(num_offset)s)::int AS num,
                   (ARRAY['LA', 'JJ', '4M', 'XL', 'LP', '4C'])[1 + bench.r(h, 1) %% 6] AS carrier,
                   bench.r(h, 2) %% 20 AS o
            FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS h
        ) AS k
    ) AS s
)"""

FLIGHT_EVENTS = (
    FLIGHTS_CTE
    + """
INSERT INTO raw.flight_events (message_id, schema_version, event_type, event_time, source_system,
    routing_key, carrier, flight_number, flight_date, origin, destination, status, flight_key, payload)
SELECT md5(%(tag)s || ':f:' || h || ':' || n)::uuid, 1, 'flight_status',
       sched_dep + make_interval(hours => n - 4) + make_interval(mins => bench.r(h, 10 + n) %% 50),
       'ops_control', 'flight.ops_control', carrier, num, day, origin, destination, status,
       carrier || num || '-' || day || '-' || origin,
       jsonb_strip_nulls(jsonb_build_object(
           'carrier', carrier, 'flight_number', num, 'flight_date', day, 'origin', origin,
           'destination', destination, 'status', status,
           'scheduled_departure', CASE WHEN n IN (0, 3) THEN sched_dep END,
           'scheduled_arrival', CASE WHEN n IN (0, 4) THEN sched_arr END,
           'actual_departure', CASE WHEN n >= 3 AND NOT cancelled THEN sched_dep + dep_delay END,
           'actual_arrival', CASE WHEN n >= 4 AND NOT cancelled
                                  THEN sched_arr + dep_delay + extra_arr_delay END,
           'tail_number', CASE WHEN n IN (0, 2) THEN tail END,
           'seat_capacity', CASE WHEN n IN (0, 1) THEN seats - n END))
FROM (
    SELECT f.*, n,
           CASE WHEN f.cancelled AND n >= 2 THEN 'cancelled'
                ELSE (ARRAY['scheduled', 'scheduled', 'boarding', 'departed', 'arrived',
                            'arrived'])[n + 1] END AS status
    FROM flights AS f CROSS JOIN generate_series(0, %(flight_events)s - 1) AS n
) AS e"""
)

PASSENGER_EVENTS = (
    FLIGHTS_CTE
    + """
INSERT INTO raw.passenger_events (message_id, schema_version, event_type, event_time,
    source_system, routing_key, passenger_ref, carrier, flight_number, flight_date, origin, action,
    flight_key, payload)
SELECT md5(%(tag)s || ':p:' || h || ':' || p || ':' || a)::uuid, 1, 'passenger_event',
       sched_dep - make_interval(hours => 72 - 30 * a) + make_interval(mins => bench.r(h, 20 + p)),
       'res_core', 'passenger.res_core', ref, carrier, num, day, origin, action,
       carrier || num || '-' || day || '-' || origin,
       jsonb_strip_nulls(jsonb_build_object(
           'passenger_ref', ref, 'carrier', carrier, 'flight_number', num, 'flight_date', day,
           'origin', origin, 'action', action,
           'cabin', CASE WHEN a = 0 THEN (ARRAY['economy', 'business'])[1 + p %% 2] END,
           'fare_amount', CASE WHEN a = 0 THEN 40 + bench.r(h, 30 + p) %% 900 END,
           'currency', CASE WHEN a = 0 THEN 'USD' END))
FROM (
    SELECT f.*, p, a, 'PAX-' || %(tag)s || '-' || h || '-' || p AS ref,
           CASE WHEN a = 2 AND bench.r(h, 40 + p) %% 20 = 0 THEN 'cancelled'
                ELSE (ARRAY['booked', 'checked_in', 'boarded'])[a + 1] END AS action
    FROM flights AS f CROSS JOIN generate_series(0, %(passengers)s - 1) AS p
    CROSS JOIN generate_series(0, 2) AS a
) AS e"""
)

POSITION_REPORTS = (
    FLIGHTS_CTE
    + """
INSERT INTO raw.position_reports (message_id, schema_version, event_type, event_time,
    source_system, routing_key, tail_number, latitude, longitude, flight_key, payload)
SELECT md5(%(tag)s || ':x:' || h || ':' || n)::uuid, 1, 'position_report',
       sched_dep + dep_delay + make_interval(mins => 5 * n), 'adsb_feed_1', 'position.adsb_feed_1',
       tail, lat, lon, CASE WHEN n %% 4 <> 0 THEN carrier || num || '-' || day || '-' || origin END,
       jsonb_strip_nulls(jsonb_build_object(
           'tail_number', tail, 'latitude', lat, 'longitude', lon,
           'altitude_ft', 1000 * (n %% 38), 'ground_speed_kt', 200 + 10 * (n %% 30),
           'heading_deg', (bench.r(h, 50 + n) %% 3600) / 10.0,
           'carrier', CASE WHEN n %% 4 <> 0 THEN carrier END,
           'flight_number', CASE WHEN n %% 4 <> 0 THEN num END,
           'flight_date', CASE WHEN n %% 4 <> 0 THEN day END,
           'origin', CASE WHEN n %% 4 <> 0 THEN origin END))
FROM (
    SELECT f.*, n, -50 + (bench.r(h, 60 + n) %% 60000) / 1000.0 AS lat,
           -80 + (bench.r(h, 80 + n) %% 45000) / 1000.0 AS lon
    FROM flights AS f CROSS JOIN generate_series(0, %(positions)s - 1) AS n
) AS e"""
)

HELPER_FUNCTION = """
CREATE SCHEMA IF NOT EXISTS bench;
CREATE OR REPLACE FUNCTION bench.r(h bigint, salt int) RETURNS int
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT hashint8(h * 131 + salt) & 2147483647 $$"""


def db_url(name: str) -> str:
    return with_database(ADMIN_URL, name)


def insert_flights(
    url: str,
    first: int,
    count: int,
    tag: str,
    *,
    day_shift: int = 0,
    num_offset: int = 0,
    mix: tuple[int, int, int] = (6, 6, 16),
) -> int:
    """Insert the events of flights first..first+count-1 in one transaction; returns the rows.

    `mix` is (status events, passengers, position reports) per flight; each passenger has three
    events, so the default is 6 + 18 + 16 = 40 events per flight.
    """
    params = {
        "airports": list(AIRPORTS),
        "base": BASE_DAY,
        "per_day": FLIGHTS_PER_DAY,
        "day_shift": day_shift,
        "num_offset": num_offset,
        "first": first,
        "last": first + count - 1,
        "tag": tag,
        "flight_events": mix[0],
        "passengers": mix[1],
        "positions": mix[2],
    }
    rows = 0
    conn = connect(url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(HELPER_FUNCTION)
            for sql, n in (
                (FLIGHT_EVENTS, mix[0]),
                (PASSENGER_EVENTS, mix[1]),
                (POSITION_REPORTS, mix[2]),
            ):
                if n:
                    cur.execute(sql, params)
                    rows += cur.rowcount
    finally:
        conn.close()
    return rows


RAW_TABLES = ("raw.flight_events", "raw.passenger_events", "raw.position_reports")


def drop_raw_indexes(cur) -> list[str]:
    """Drop the indexes and key constraints of the raw tables; returns the DDL to rebuild them."""
    cur.execute(
        """SELECT format('ALTER TABLE %%s ADD CONSTRAINT %%I %%s', c.conrelid::regclass, c.conname,
                         pg_get_constraintdef(c.oid)),
                  format('ALTER TABLE %%s DROP CONSTRAINT %%I', c.conrelid::regclass, c.conname)
           FROM pg_constraint AS c
           WHERE c.conrelid = ANY(%s::regclass[]) AND c.contype IN ('p', 'u')""",
        (list(RAW_TABLES),),
    )
    constraints = cur.fetchall()
    cur.execute(
        """SELECT pg_get_indexdef(i.indexrelid), format('DROP INDEX %%s', i.indexrelid::regclass)
           FROM pg_index AS i
           WHERE i.indrelid = ANY(%s::regclass[])
             AND NOT EXISTS (SELECT 1 FROM pg_constraint AS c WHERE c.conindid = i.indexrelid)""",
        (list(RAW_TABLES),),
    )
    indexes = cur.fetchall()
    for _create, drop in [*constraints, *indexes]:
        cur.execute(drop)
    return [create for create, _drop in [*constraints, *indexes]]


def load_history(url: str, first_flight: int, flights: int, chunk: int = 10000) -> float:
    """Insert the history of `flights` flights; returns the seconds spent.

    Like any bulk load, it drops the raw indexes first and rebuilds them at the end, which is
    several times faster than maintaining them row by row. The tables end up exactly as the
    migrations define them.
    """
    started = time.perf_counter()
    conn = connect(url)
    conn.autocommit = True
    with conn.cursor() as cur:
        rebuild = drop_raw_indexes(cur)
    for start in range(first_flight, first_flight + flights, chunk):
        n = min(chunk, first_flight + flights - start)
        insert_flights(url, start, n, "h")
        done = start + n - first_flight
        if done % (chunk * 10) == 0 or done == flights:
            print(f"  {done * EVENTS_PER_FLIGHT:,} events loaded", flush=True)
    with conn.cursor() as cur:
        cur.execute("SET maintenance_work_mem = '512MB'")
        for ddl in rebuild:
            cur.execute(ddl)
        cur.execute("VACUUM ANALYZE raw.flight_events, raw.passenger_events, raw.position_reports")
    conn.close()
    return time.perf_counter() - started


def raw_events(url: str) -> int:
    conn = connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT (SELECT count(*) FROM raw.flight_events)"
                " + (SELECT count(*) FROM raw.passenger_events)"
                " + (SELECT count(*) FROM raw.position_reports)"
            )
            return int(cur.fetchone()[0])
    finally:
        conn.close()


def bare_fact_flight_statement() -> str:
    """The SELECT of fact_flight.sql as one CREATE TABLE AS: the same aggregation, nothing else."""
    sql = load_sql("curated", "fact_flight")
    body = sql[sql.index("WITH events AS") : sql.index("ON CONFLICT")]
    return f"CREATE TABLE bench_bare_fact_flight AS {body}"


def time_full_refresh(url: str, repeats: int) -> tuple[float, float]:
    """(median seconds of the fact_flight full refresh, of the bare statement), interleaved."""
    ours, bare = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        update_table(url, "fact_flight", full_refresh=True)
        ours.append(time.perf_counter() - started)
        started = time.perf_counter()
        with transform_transaction(url, "bench.bare", work_mem="256MB") as cur:
            cur.execute(bare_fact_flight_statement())
            cur.execute("DROP TABLE bench_bare_fact_flight")
        bare.append(time.perf_counter() - started)
    return statistics.median(ours), statistics.median(bare)


class Batches:
    """Micro-batches of new events: new flights of the coming days, late events of recent ones.

    The same sequence of batches is produced for every history size, so the sizes compare fairly.
    """

    def __init__(self, url: str, batch: int):
        self.url = url
        self.batch = batch
        self.count = 0

    def load_next(self) -> int:
        new_flights = int(self.batch * 0.9) // EVENTS_PER_FLIGHT
        late_flights = int(self.batch * 0.1) // 10  # 10 late events each (4 status, 2 pax)
        self.count += 1
        tag = f"b{self.count}"
        rows = insert_flights(
            self.url, 0, new_flights, tag, day_shift=1 + self.count, num_offset=1000
        )
        # late: more status updates and passengers for flights of the last three days
        first_recent = (self.count * 97) % (3 * FLIGHTS_PER_DAY)
        rows += insert_flights(self.url, first_recent, late_flights, f"{tag}l", mix=(4, 2, 0))
        return rows

    def apply(self) -> dict[str, float]:
        """Apply the loaded batch as a drain run would; seconds per step and in total."""
        started = time.perf_counter()
        steps = {r.table: r.seconds for r in update_all(self.url)}
        for m in refresh_pending(self.url):
            steps[f"marts.{m.mart}"] = steps.get(f"marts.{m.mart}", 0.0) + m.seconds
        steps["total"] = time.perf_counter() - started
        return steps


def time_micro_batches(
    sides: dict[str, Batches], repeats: int
) -> tuple[dict[str, dict[str, float]], float, int]:
    """Apply micro-batches to every history in turn, `repeats` times.

    Interleaving the histories batch by batch exposes them to the same background load, so their
    ratio holds even on a busy machine. Returns (median seconds per step and history, median of
    the per-round ratios last/first history, events in a batch).
    """
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in sides}
    rows = 0
    for batches in sides.values():
        batches.load_next()
        batches.apply()  # warm-up: caches, plans
    for _ in range(repeats):
        for name, batches in sides.items():
            rows = batches.load_next()
            runs[name].append(batches.apply())
    medians = {
        name: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for name, rs in runs.items()
    }
    first, last = list(runs.values())[0], list(runs.values())[-1]
    ratio = statistics.median(b["total"] / a["total"] for a, b in zip(first, last, strict=True))
    return medians, ratio, rows


def fingerprint() -> str:
    """Identifies the generated history: the generator SQL and the schema it is loaded into."""
    text = "".join((FLIGHTS_CTE, FLIGHT_EVENTS, PASSENGER_EVENTS, POSITION_REPORTS))
    text += "".join(m.checksum for m in load_migrations())
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def database_exists(name: str) -> bool:
    conn = psycopg2.connect(ADMIN_URL)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            return cur.fetchone() is not None
    finally:
        conn.close()


def history_database(name: str, events: int, cache: bool) -> tuple[str, float | None]:
    """A fresh database `name` holding `events` events of raw history and nothing else.

    With `cache`, the loaded history is kept as a template database and cloned next time.
    Returns (url, seconds spent loading, or None when cloned).
    """
    template = f"latam_bench_tpl_{events}_{fingerprint()}"
    drop_database(ADMIN_URL, name)
    if cache and database_exists(template):
        admin_exec(ADMIN_URL, f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        return db_url(name), None
    url = db_url(name)
    migrate(url)
    load_dim_airport(url)
    print(f"loading {events:,} events of history ...", flush=True)
    seconds = load_history(url, 0, events // EVENTS_PER_FLIGHT)
    if cache:
        admin_exec(ADMIN_URL, f'CREATE DATABASE "{template}" TEMPLATE "{name}"')
    return url, seconds


def prepare(name: str, events: int, args: argparse.Namespace) -> tuple[str, dict]:
    """A history database with its curated tables and marts built; its first figures."""
    url, load_s = history_database(name, events, args.cache)
    figures: dict = {
        "events": raw_events(url),
        "load_s": None if load_s is None else round(load_s, 1),
    }
    started = time.perf_counter()
    update_all(url, full_refresh=True)
    refresh_pending(url)
    figures["full_refresh_all_s"] = round(time.perf_counter() - started, 2)
    conn = connect(url)
    conn.autocommit = True
    with conn.cursor() as cur:  # as autovacuum would after a rebuild
        cur.execute("VACUUM ANALYZE")
    conn.close()
    return url, figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--history", type=int, default=1_000_000)
    parser.add_argument("--large", type=int, default=5_000_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="Keep the benchmark databases.")
    parser.add_argument(
        "--cache",
        action="store_true",
        help="Keep the loaded histories as template databases (latam_bench_tpl_*) and reuse them.",
    )
    args = parser.parse_args()
    names = {"history": f"{BENCH_DB}_small", "large_history": f"{BENCH_DB}_large"}
    figures: dict = {}
    try:
        url, small = prepare(names["history"], args.history, args)
        print("full refresh of fact_flight vs a bare statement ...", flush=True)
        ours, bare = time_full_refresh(url, 3)
        small.update(
            full_refresh_fact_flight_s=round(ours, 3),
            bare_aggregation_s=round(bare, 3),
            full_refresh_ratio=round(ours / bare, 2),
        )
        update_all(url)
        refresh_pending(url)
        large_url, large = prepare(names["large_history"], args.large, args)
        print(f"micro-batches of {args.batch:,} events, alternating histories ...", flush=True)
        sides = {
            "history": Batches(url, args.batch),
            "large_history": Batches(large_url, args.batch),
        }
        steps, ratio, rows = time_micro_batches(sides, args.repeats)
        for side, fig in (("history", small), ("large_history", large)):
            fig["batch_events"] = rows
            fig["batch_s"] = round(steps[side].pop("total"), 3)
            fig["batch_steps_s"] = {k: round(v, 3) for k, v in steps[side].items()}
        figures = {"history": small, "large_history": large}
    finally:
        if not args.keep:
            for name in names.values():
                drop_database(ADMIN_URL, name)
    figures.update(
        incremental_ratio=round(ratio, 2),
        incremental_goal_met=ratio <= GOAL_INCREMENTAL_RATIO,
        full_refresh_goal_met=small["full_refresh_ratio"] <= GOAL_FULL_REFRESH_RATIO,
    )
    print()
    print(
        f"full refresh of fact_flight ({small['events']:,} events): "
        f"{small['full_refresh_fact_flight_s']:.2f}s, bare aggregation "
        f"{small['bare_aggregation_s']:.2f}s, ratio {small['full_refresh_ratio']:.2f} "
        f"(goal <= {GOAL_FULL_REFRESH_RATIO})"
    )
    print(
        f"micro-batch of {rows:,} events: {small['batch_s']:.3f}s on {small['events']:,} events, "
        f"{large['batch_s']:.3f}s on {large['events']:,}; ratio {ratio:.2f} "
        f"(median of per-round ratios; goal <= {GOAL_INCREMENTAL_RATIO})"
    )
    for name in small["batch_steps_s"]:
        print(
            f"  {name:<34} {small['batch_steps_s'][name]:.3f}s  "
            f"{large['batch_steps_s'].get(name, float('nan')):.3f}s"
        )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
