"""Abuse limits of the API's lists, held on a warehouse of realistic size.

Every filter combination a list accepts is read from one index in the list's order: the plan of
the exact SQL the API builds (`api_service.queries`, first page and a page after a cursor) is an
index scan that no sequential scan, bitmap scan or sort comes near, and whose index range is
fixed by the request's own filters. Every combination a list refuses is a 400 through the app,
naming the filters one of which to add. Combinations are generated from the lists' filter maps
(`queries.*_FILTERS`), so a new filter is held to the same rule without touching this module
(it only needs sample values below).

The warehouse is built once for the module: a million flights over two years (one INSERT ...
SELECT generate_series, hub-and-spoke airports, five carriers, statuses as they age), 200k route
rows, 73k airport days, 90 days of hourly check evaluations and 50k held-back rows, then ANALYZE.
Plans are EXPLAINed as the API's own role: its planner settings (migration 0034) are part of the
limits. Plans, not timings, are asserted.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg2
import pytest

from api_service import airports, flights, quality, queries, routes
from api_service.endpoints import Keyset
from tests.integration.api_fixtures import ApiWarehouse, own_database

pytestmark = pytest.mark.integration
pytest_plugins = ["tests.integration.api_fixtures"]

PROBLEM = "application/problem+json"

# --- the warehouse ----------------------------------------------------------------------------

# 40 real airports, then 60 made-up ones (QAB..QCI); the first ones take most of the flights
AIRPORTS = """
    SELECT k::int AS k, code FROM unnest(ARRAY[
        'SCL','GRU','LIM','BOG','GIG','BSB','CGH','MDE','UIO','GYE','EZE','AEP','ASU','CUZ',
        'AQP','CLO','CTG','PMC','ANF','CCP','PUQ','FLN','POA','CWB','SSA','REC','FOR','BEL',
        'MAO','CNF','MIA','JFK','MAD','LIS','FRA','MCO','LAX','BCN','CUN','PUJ'])
        WITH ORDINALITY AS a (code, k)
    UNION ALL
    SELECT 40 + n, 'Q' || chr(65 + n / 26) || chr(65 + n % 26) FROM generate_series(1, 60) AS n
"""
FIRST_DAY, TODAY = dt.date(2025, 1, 1), dt.date(2026, 12, 1)

# 1370 flights a day from 2025-01-01 for 730 days. Airports are drawn with a hub-and-spoke skew
# (SCL about 16% of departures, the first ten about 40%); carriers LA 55%, JJ 25%, LP 10%, XL 5%,
# 4C 5%. Past flights arrived (4% cancelled, 0.5% diverted); today's are under way; the 30 days
# after it are scheduled.
FLIGHTS = f"""
INSERT INTO curated.fact_flight (
    flight_key, carrier, flight_number, flight_date, origin, destination, status,
    scheduled_departure, scheduled_arrival, cancelled, diverted, arrived, on_time,
    first_event_time, last_event_time, event_count)
WITH airports AS ({AIRPORTS}),
drawn AS (
    SELECT i, DATE '{FIRST_DAY}' + i / 1370 AS flight_date, 1 + i % 1370 AS flight_number,
           random() AS c, 1 + floor(100 * power(random(), 2.5))::int AS o,
           1 + floor(100 * power(random(), 2.5))::int AS d, random() AS s
    FROM generate_series(0, 999999) AS i
),
flights AS (
    SELECT f.*,
           CASE WHEN c < 0.55 THEN 'LA' WHEN c < 0.80 THEN 'JJ' WHEN c < 0.90 THEN 'LP'
                WHEN c < 0.95 THEN 'XL' ELSE '4C' END AS carrier,
           CASE WHEN flight_date > DATE '{TODAY}' THEN
                    CASE WHEN s < 0.02 THEN 'cancelled' ELSE 'scheduled' END
                WHEN flight_date = DATE '{TODAY}' THEN
                    (ARRAY['scheduled', 'boarding', 'departed', 'arrived'])[1 + floor(s * 4)::int]
                WHEN s < 0.04 THEN 'cancelled'
                WHEN s < 0.045 THEN 'diverted'
                ELSE 'arrived' END AS status
    FROM drawn AS f
)
SELECT f.carrier || f.flight_number || '-' || f.flight_date || '-' || o.code,
       f.carrier, f.flight_number, f.flight_date, o.code, d.code, f.status,
       f.flight_date + time '06:00' + f.flight_number * interval '40 seconds',
       f.flight_date + time '09:00' + f.flight_number * interval '40 seconds',
       f.status = 'cancelled', f.status = 'diverted', f.status = 'arrived',
       CASE WHEN f.status = 'arrived' THEN f.s < 0.8 END,
       f.flight_date - 30, f.flight_date + time '10:00', 1 + f.i % 5
FROM flights AS f
JOIN airports AS o ON o.k = f.o
JOIN airports AS d ON d.k = CASE WHEN f.d = f.o THEN 1 + f.d % 100 ELSE f.d END
"""
# 275 routes (carrier, origin, destination), as flown on one day, every day: 200k rows
ROUTE_ROWS = f"""
INSERT INTO marts.route_daily_performance (
    flight_date, carrier, origin, destination, flights, cancelled, diverted, arrived,
    on_time_arrivals, passengers_boarded)
WITH routes AS (
    SELECT DISTINCT carrier, origin, destination FROM curated.fact_flight
    WHERE flight_date = DATE '2025-06-01' ORDER BY 1, 2, 3 LIMIT 275
)
SELECT day::date, r.carrier, r.origin, r.destination, 3, 0, 0, 3, 2, 400
FROM generate_series(DATE '{FIRST_DAY}', DATE '{TODAY}' + 29, interval '1 day') AS day
CROSS JOIN routes AS r
"""
TRAFFIC_ROWS = f"""
INSERT INTO marts.airport_daily_traffic (flight_date, airport, departures, arrivals, cancelled)
WITH airports AS ({AIRPORTS})
SELECT day::date, a.code, 20, 20, 1
FROM generate_series(DATE '{FIRST_DAY}', DATE '{TODAY}' + 29, interval '1 day') AS day
CROSS JOIN airports AS a
"""
# hourly validations of 20 assets for 90 days, 5 checks each: 216k evaluations
VALIDATIONS = """
INSERT INTO quality.validation (validation_id, suite_name, asset_key, evaluated_at, success,
    checks_evaluated, checks_failed, duration_ms)
SELECT md5(h || '/' || a)::uuid, 'suite_' || a, 'curated/asset_' || a,
       TIMESTAMPTZ '2026-09-02 00:00Z' + h * interval '1 hour', true, 5, 0, 100
FROM generate_series(0, 90 * 24 - 1) AS h, generate_series(1, 20) AS a
"""
EVALUATIONS = """
INSERT INTO quality.check_evaluation (validation_id, check_name, asset_key, table_name,
    evaluated_at, success, severity, blocking, description, expectations_evaluated,
    expectations_failed, unexpected_count, statistics)
SELECT v.validation_id, 'check_' || c, v.asset_key, 'curated.asset', v.evaluated_at,
       random() < 0.95, 'ERROR', true, 'a check', 1, 0, 0, '{}'
FROM quality.validation AS v, generate_series(1, 5) AS c
"""
REJECTS = """
INSERT INTO quality.rejects (table_name, row_key, rule, observed)
SELECT 'curated.table_' || (n % 3), 'key-' || n, 'rule_' || (n % 10), '{}'
FROM generate_series(1, 50000) AS n
"""


def _bulk_load(cur, table: str, insert: str) -> None:
    """Run `insert` into `table` with its indexes and keys dropped, then build them again from
    their own definitions: the indexes the migrations made, built once instead of maintained a
    row at a time."""
    cur.execute(
        """SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
           WHERE conrelid = %s::regclass AND contype IN ('p', 'u')""",
        (table,),
    )
    keys = cur.fetchall()
    cur.execute(
        """SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index
           WHERE indrelid = %s::regclass AND NOT indisprimary AND NOT indisunique""",
        (table,),
    )
    indexes = cur.fetchall()
    for name, _ in indexes:
        cur.execute(f"DROP INDEX {name}")
    for name, _ in keys:
        cur.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
    cur.execute(insert)
    for name, definition in keys:
        cur.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition}")
    for _, definition in indexes:
        cur.execute(definition)


def build_warehouse(url: str) -> None:
    conn = psycopg2.connect(url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SET maintenance_work_mem = '256MB'")
            cur.execute("SELECT setseed(0.2026)")
            # a copy thrown away after the module: no WAL for a million rows and their indexes
            cur.execute("ALTER TABLE curated.fact_flight SET UNLOGGED")
            _bulk_load(cur, "curated.fact_flight", FLIGHTS)
            _bulk_load(cur, "marts.route_daily_performance", ROUTE_ROWS)
            _bulk_load(cur, "marts.airport_daily_traffic", TRAFFIC_ROWS)
            cur.execute(VALIDATIONS)
            _bulk_load(cur, "quality.check_evaluation", EVALUATIONS)
            _bulk_load(cur, "quality.rejects", REJECTS)
            cur.execute("ANALYZE")
    finally:
        conn.close()


@pytest.fixture(scope="module")
def api_warehouse(template_db: str, tmp_path_factory) -> Iterator[ApiWarehouse]:
    """This module's API (and EXPLAIN) read the big warehouse."""
    with own_database("latam_plans", template=template_db) as url:
        build_warehouse(url)
        yield ApiWarehouse(url, tmp_path_factory.mktemp("plans_data_docs"))


def _session(url: str, *setup: str) -> Iterator[psycopg2.extensions.cursor]:
    """An autocommit cursor on `url` after the `setup` statements; closed afterwards."""
    conn = psycopg2.connect(url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            for statement in setup:
                cur.execute(statement)
            yield cur
    finally:
        conn.close()


@pytest.fixture(scope="module")
def reader(api_warehouse: ApiWarehouse) -> Iterator[psycopg2.extensions.cursor]:
    """A session of the API's role, with the settings the API's connections get."""
    yield from _session(api_warehouse.reader_url, "SET TimeZone = 'UTC'")


@pytest.fixture(scope="module")
def owner(api_warehouse: ApiWarehouse) -> Iterator[psycopg2.extensions.cursor]:
    yield from _session(api_warehouse.owner_url)


# --- the lists ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ListQuery:
    """One list of the API: its table, filters, SQL builder, sort key and path."""

    name: str
    table: str
    filters: queries.Filters
    build: Callable[[dict[str, Any], tuple | None, int], queries.Query]
    keyset: Keyset
    path: str
    fixed: dict[str, Any] = field(default_factory=dict)  # columns the path pins

    def combinations(self) -> Iterator[tuple[str, ...]]:
        names = list(self.filters.by)
        for size in range(len(names) + 1):
            yield from itertools.combinations(names, size)


LISTS = {
    q.name: q
    for q in (
        ListQuery(
            "flights", "curated.fact_flight", queries.FLIGHT_FILTERS, queries.flights,
            flights.FLIGHTS.keyset, "/api/v1/flights",
        ),
        ListQuery(
            "routes", "marts.route_daily_performance", queries.ROUTE_FILTERS,
            queries.route_performance, routes.ROUTES.keyset, "/api/v1/routes/performance",
        ),
        ListQuery(
            "traffic", "marts.airport_daily_traffic", queries.TRAFFIC_FILTERS,
            lambda args, after, limit: queries.airport_traffic("SCL", args, after, limit),
            airports.TRAFFIC.keyset, "/api/v1/airports/SCL/traffic", fixed={"airport": "SCL"},
        ),
        ListQuery(
            "quality_latest", "quality.latest_check_result", queries.QUALITY_LATEST_FILTERS,
            queries.quality_latest, quality.LATEST.keyset, "/api/v1/quality",
        ),
        ListQuery(
            "quality_history", "quality.check_evaluation", queries.QUALITY_HISTORY_FILTERS,
            queries.quality_history, quality.HISTORY.keyset, "/api/v1/quality/history",
        ),
        ListQuery(
            "quality_rejects", "quality.rejects", queries.REJECT_FILTERS,
            queries.quality_rejects, quality.REJECTS.keyset, "/api/v1/quality/rejects",
        ),
    )
}  # fmt: skip

# Filter values, by parameter name: common values (the hub, the main carrier), values that match
# nothing or almost nothing (what an abusive client sends: the planner expects no row), and a
# mix of the two. Every filter of every list needs one in each set.
VALUES: dict[str, dict[str, Any]] = {
    "common": {
        "flight_date": dt.date(2026, 3, 14), "origin": "SCL", "destination": "LIM",
        "carrier": "LA", "status": "arrived", "date_from": dt.date(2026, 1, 1),
        "date_to": dt.date(2026, 2, 1), "check": "check_1", "asset": "curated/asset_3",
        "table": "curated.table_1",
    },
    "absent": {
        "flight_date": TODAY, "origin": "QZZ", "destination": "ZZZ", "carrier": "ZZ",
        "status": "boarding", "date_from": dt.date(2020, 1, 1), "date_to": dt.date(2030, 1, 1),
        "check": "no_such_check", "asset": "curated/no_such_asset",
        "table": "curated.no_such_table",
    },
    "mixed": {
        "flight_date": TODAY, "origin": "SCL", "destination": "QCH", "carrier": "XL",
        "status": "diverted", "date_from": dt.date(2026, 6, 1), "date_to": TODAY,
        "check": "check_1", "asset": "curated/no_such_asset", "table": "curated.table_2",
    },
}  # fmt: skip

ACCEPTED = [
    (name, combo)
    for name, q in LISTS.items()
    for combo in q.combinations()
    if not q.filters.refusals(combo)
]
REFUSED = [
    (name, combo)
    for name, q in LISTS.items()
    for combo in q.combinations()
    if q.filters.refusals(combo)
]


def _id(case: tuple[str, tuple[str, ...]]) -> str:
    return f"{case[0]}[{'+'.join(case[1]) or 'none'}]"


# --- plans --------------------------------------------------------------------------------------

NEVER = {"Seq Scan", "Bitmap Heap Scan", "Bitmap Index Scan", "Sort", "Incremental Sort"}
INDEX_SCANS = {"Index Scan", "Index Only Scan"}


def _nodes(plan: dict) -> Iterator[dict]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def _mentions(condition: str, column: str) -> bool:
    """Whether a plan condition compares `column` (quoted values left out)."""
    bare = re.sub(r"'(?:[^']|'')*'", "''", condition)
    return re.search(rf"(?<![\w.]){re.escape(column)}(?!\w)", bare) is not None


def _describe(plan: dict) -> str:
    parts = []
    for node in _nodes(plan):
        text = node["Node Type"]
        for key in ("Index Name", "Index Cond", "Filter", "Sort Key"):
            if key in node:
                text += f" {key}: {node[key]}"
        parts.append(text)
    return " -> ".join(parts)


class Plans:
    """EXPLAIN as the API's role, and what a plan's index is."""

    def __init__(self, reader, owner):
        self.reader, self.owner = reader, owner
        self._columns: dict[str, list[str]] = {}
        self._counts: dict[tuple, int] = {}

    def explain(self, sql: str, params: dict[str, Any]) -> dict:
        self.reader.execute("EXPLAIN (FORMAT JSON) " + sql, params)
        return self.reader.fetchone()[0][0]["Plan"]

    def rows(self, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        self.reader.execute(sql, params)
        names = [d.name for d in self.reader.description]
        return [dict(zip(names, row, strict=True)) for row in self.reader.fetchall()]

    def index_columns(self, index: str) -> list[str]:
        if index not in self._columns:
            self.owner.execute(
                """SELECT a.attname FROM pg_index AS i
                   JOIN pg_class AS c ON c.oid = i.indexrelid
                   CROSS JOIN unnest(i.indkey) WITH ORDINALITY AS k (attnum, n)
                   JOIN pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                   WHERE c.relname = %s ORDER BY k.n""",
                (index,),
            )
            self._columns[index] = [name for (name,) in self.owner.fetchall()]
        return self._columns[index]

    def count(self, table: str, equal: dict[str, Any]) -> int:
        """Rows of `table` with these column values: the range of an index they lead."""
        key = (table, *sorted(equal.items()))
        if key not in self._counts:
            where = " AND ".join(f"{column} = %({column})s" for column in equal)
            self.owner.execute(f"SELECT count(*) FROM {table} WHERE {where}", equal)
            self._counts[key] = self.owner.fetchone()[0]
        return self._counts[key]


@pytest.fixture(scope="module")
def plans(reader, owner) -> Plans:
    return Plans(reader, owner)


def _cursor_after(plans: Plans, q: ListQuery, args: dict[str, Any]) -> tuple:
    """The cursor of the second page: the sort key of the first page's last row (for a filter
    that matches nothing, the list's first row with the pinned columns of the filters)."""
    sql, params = q.build(args, None, 3)
    found = plans.rows(sql, params)
    if found:
        return q.keyset.of(found[-1])
    first = plans.rows(*q.build({}, None, 1))[0]
    pinned = q.filters.pinned(args)
    return tuple(pinned.get(column, first[column]) for column in q.keyset.columns)


def check_plan(plans: Plans, q: ListQuery, combo: tuple[str, ...], args, after) -> None:
    sql, params = q.build(args, after, 100)
    plan = plans.explain(sql, params)
    shown = f"{q.name} {args} after={after}: {_describe(plan)}"
    nodes = list(_nodes(plan))
    assert not {n["Node Type"] for n in nodes} & NEVER, shown
    relname = q.table.split(".")[1]
    (scan,) = [n for n in nodes if n.get("Relation Name") == relname]
    assert scan["Node Type"] in INDEX_SCANS, shown
    condition = scan.get("Index Cond", "")
    columns = plans.index_columns(scan["Index Name"])

    by = q.filters.by
    filtered = {by[name].column for name in combo} | set(q.fixed)
    if filtered:
        # a range of the index, fixed by the request's own filters: never a walk of all of it
        assert columns[0] in filtered and _mentions(condition, columns[0]), shown
    bounding = [by[name].column for name in combo if name in q.filters.bounding] + list(q.fixed)
    if not bounding:
        # no filter bounds the range: the index serves them all, no row is read to be dropped
        assert all(_mentions(condition, by[name].column) for name in combo), shown
    else:
        # the range read is at most that of a bounding filter (one day, one airport...): the
        # planner picked another filter's index only where that range is smaller
        values = {by[name].column: args[name] for name in combo if by[name].op == "="}
        values |= q.fixed
        if columns[0] in values and columns[0] not in bounding:
            prefix = list(itertools.takewhile(lambda c: c in values, columns))
            read = plans.count(q.table, {c: values[c] for c in prefix})
            largest = max(plans.count(q.table, {c: values[c]}) for c in bounding if c in values)
            assert read <= largest, shown
    if after is not None:
        # the page starts at the cursor within the range, it does not filter up to it
        pinned = q.filters.pinned(args) | q.fixed
        first = next(c for c in q.keyset.columns if pinned.get(c) is None)
        assert _mentions(condition, first), shown


@pytest.mark.parametrize("case", ACCEPTED, ids=_id)
def test_every_accepted_filter_combination_is_an_index_range_in_list_order(plans, case):
    name, combo = case
    q = LISTS[name]
    for label, values in VALUES.items():
        missing = [f for f in combo if f not in values]
        assert not missing, f"no sample value of {missing} in VALUES[{label!r}]"
        args = {f: values[f] for f in combo}
        check_plan(plans, q, combo, args, None)
        check_plan(plans, q, combo, args, _cursor_after(plans, q, args))


def test_every_list_is_covered():
    """The lists above are every list the API serves (each has a cursor parameter)."""
    from api_service import create_app
    from api_service.config import get_api_config

    app = create_app(get_api_config(database_url="postgresql://unused@127.0.0.1:1/x", testing=True))
    document = app.test_client().get("/openapi.json").get_json()
    with_filters = {
        path
        for path, operations in document["paths"].items()
        if any(p["name"] == "cursor" for p in operations["get"].get("parameters", []))
        and "{flight_key}" not in path  # a flight's events: one flight, by its key index
    }
    covered = {re.sub(r"/SCL/", "/{iata}/", q.path) for q in LISTS.values()}
    assert with_filters == covered


def test_the_latest_results_read_a_table_without_sorting_the_history(plans):
    """The quality endpoint reads quality.latest_check_result by its key: the 216k evaluations
    of the history are not in the plan, nor any sort."""
    for args in ({}, {"asset": "curated/asset_3"}):
        for after in (None, ("curated/asset_3", "check_2")):
            plan = plans.explain(*queries.quality_latest(args, after, 100))
            nodes = list(_nodes(plan))
            assert {n.get("Relation Name") for n in nodes} - {None} == {"latest_check_result"}
            assert not {n["Node Type"] for n in nodes} & NEVER, _describe(plan)
    plans.owner.execute("SELECT count(*) FROM quality.latest_check_result")
    assert plans.owner.fetchone()[0] == 100  # 20 assets, 5 checks each


# --- refusals -----------------------------------------------------------------------------------


def _query_string(args: dict[str, Any]) -> str:
    return "&".join(
        f"{k}={v.isoformat() if isinstance(v, dt.date) else v}" for k, v in args.items()
    )


@pytest.mark.parametrize("case", REFUSED, ids=_id)
def test_every_refused_combination_is_a_400_naming_the_filter_to_add(client, case):
    name, combo = case
    q = LISTS[name]
    args = {f: VALUES["common"][f] for f in combo}
    response = client.get(f"{q.path}?{_query_string(args)}")
    assert response.status_code == 400 and response.content_type == PROBLEM
    problem = response.get_json()
    refused = q.filters.refusals(combo)
    assert set(problem["errors"]["query"]) == set(refused)
    for filter_name in refused:
        assert filter_name in problem["detail"]
        for needed in q.filters.bounding:  # the filters one of which to add
            assert f"`{needed}`" in problem["detail"]
    # with one of them added, the same request is served
    added = {**args, q.filters.bounding[0]: VALUES["common"][q.filters.bounding[0]]}
    assert client.get(f"{q.path}?{_query_string(added)}").status_code == 200


def test_status_with_an_airport_is_served_at_scale(client, owner):
    """What a refused request is told to do works: status with an origin, paged."""
    body = client.get("/api/v1/flights?origin=QCH&status=diverted&limit=5").get_json()
    owner.execute(
        """SELECT flight_key FROM curated.fact_flight WHERE origin = 'QCH' AND status = 'diverted'
           ORDER BY flight_date, flight_key LIMIT 5"""
    )
    assert [f["flight_key"] for f in body["data"]] == [k for (k,) in owner.fetchall()]
