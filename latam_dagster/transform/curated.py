"""Incremental and full updates of the curated tables, one transaction per table.

An incremental update finds what its sources changed since its watermarks (the "scope": flight
keys, passenger pairs or position reports), runs the table's SQL file restricted to that scope, and
records the flight dates whose rows changed in `curated.changed_flight_dates`, from which the mart
partitions to refresh are derived. Tables with rules are written, audited and published: the SQL
writes `staging.<table>`, and `quality.audit` publishes to `curated.<table>` only the rows that pass
(see that module), all in the same transaction. Its work grows with the batch, not with the history: every
lookup goes through an index (`ingest_xid`/`updated_xid` for the scope, `flight_key` for the
recomputation). A full refresh runs the same SQL unrestricted on an emptied table.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg2.extensions

from latam_dagster.db import connect
from latam_dagster.quality import suites
from latam_dagster.quality.audit import (
    AuditBlocked,
    AuditedTable,
    AuditResult,
    audit_and_publish,
    record_batch,
    touched_dates_sql,
)
from latam_dagster.transform import watermarks as wm
from latam_dagster.transform.session import keep_to_indexes, transform_transaction
from latam_dagster.transform.sqlfiles import load_sql, scoped, without_upsert

Cursor = psycopg2.extensions.cursor
SMALL_SCOPE = 5_000
"""Up to this many keys, an incremental update joins through indexes only; a larger scope (a
catch-up after an outage) lets the planner hash-join, which is then the cheaper plan."""


@dataclass
class StepResult:
    """What one update of a curated table did; becomes materialization metadata."""

    table: str
    full_refresh: bool
    in_scope: int | None = None
    changed_rows: int = 0
    dates_touched: int = 0
    watermark: int = 0
    seconds: float = 0.0
    audit: AuditResult | None = None

    def as_metadata(self) -> dict[str, Any]:
        md: dict[str, Any] = {
            "mode": "full refresh" if self.full_refresh else "incremental",
            "changed_rows": self.changed_rows,
            "dates_touched": self.dates_touched,
            "watermark_xid": self.watermark,
            "seconds": round(self.seconds, 3),
        }
        if self.in_scope is not None:
            md["in_scope"] = self.in_scope
        if self.audit is not None:
            md.update(self.audit.as_metadata())
        return md


@dataclass(frozen=True)
class CuratedTable:
    """A curated table: its sources (watermarked) and how an incremental run finds its scope."""

    name: str
    sources: tuple[str, ...]
    scope: Callable[[Cursor, dict[str, int]], tuple[str, int | None]]
    feeds_marts: bool
    audit: AuditedTable | None = None
    rescope: str | None = None
    """SQL listing the keys of the batch's scope: held-back rows among them are audited again."""

    @property
    def qualified(self) -> str:
        return f"curated.{self.name}"

    @property
    def written(self) -> str:
        """The table the SQL writes: staging for audited tables, the curated table otherwise."""
        return self.audit.staging if self.audit else self.qualified


def _count(cur: Cursor, table: str) -> int:
    cur.execute(f"ANALYZE {table}")  # the planner must know the scope is small to use indexes
    cur.execute(f"SELECT count(*) FROM {table}")
    return int(cur.fetchone()[0])


def _scope_fact_flight(cur: Cursor, marks: dict[str, int]) -> tuple[str, int | None]:
    """Flights with new events, plus flights at airports whose reference data changed."""
    cur.execute(
        """CREATE TEMP TABLE scope_flights ON COMMIT DROP AS
           SELECT DISTINCT flight_key FROM raw.flight_events
           WHERE ingest_xid >= %s::text::xid8""",
        (str(marks["raw.flight_events"]),),
    )
    cur.execute(
        "SELECT array_agg(iata) FROM curated.dim_airport WHERE updated_xid >= %s::text::xid8",
        (str(marks["curated.dim_airport"]),),
    )
    airports = cur.fetchone()[0]
    if airports:  # rare: the reference data was loaded or corrected
        cur.execute(
            """INSERT INTO scope_flights
               SELECT flight_key FROM staging.fact_flight
               WHERE (origin = ANY(%s) OR destination = ANY(%s))
               EXCEPT SELECT flight_key FROM scope_flights""",
            (airports, airports),
        )
    return "e.flight_key IN (SELECT flight_key FROM scope_flights)", _count(cur, "scope_flights")


def _scope_flight_passenger(cur: Cursor, marks: dict[str, int]) -> tuple[str, int | None]:
    """(flight, passenger) pairs with new events."""
    cur.execute(
        """CREATE TEMP TABLE scope_passengers ON COMMIT DROP AS
           SELECT DISTINCT flight_key, passenger_ref FROM raw.passenger_events
           WHERE ingest_xid >= %s::text::xid8""",
        (str(marks["raw.passenger_events"]),),
    )
    predicate = "(e.flight_key, e.passenger_ref) IN (SELECT flight_key, passenger_ref FROM scope_passengers)"
    return predicate, _count(cur, "scope_passengers")


def _scope_flight_passenger_load(cur: Cursor, marks: dict[str, int]) -> tuple[str, int | None]:
    """Flights whose passengers or whose computed fact_flight row (seat capacity) changed."""
    cur.execute(
        """CREATE TEMP TABLE scope_flights ON COMMIT DROP AS
           SELECT flight_key FROM curated.flight_passenger WHERE updated_xid >= %s::text::xid8
           UNION
           SELECT flight_key FROM staging.fact_flight WHERE updated_xid >= %s::text::xid8""",
        (str(marks["curated.flight_passenger"]), str(marks["curated.fact_flight"])),
    )
    return "flight_key IN (SELECT flight_key FROM scope_flights)", _count(cur, "scope_flights")


def _scope_aircraft_position_latest(cur: Cursor, marks: dict[str, int]) -> tuple[str, int | None]:
    """New position reports; they are merged with the current rows, not recomputed."""
    return f"p.ingest_xid >= '{int(marks['raw.position_reports'])}'::xid8", None


TABLES: dict[str, CuratedTable] = {
    t.name: t
    for t in (
        CuratedTable(
            "fact_flight",
            ("raw.flight_events", "curated.dim_airport"),
            _scope_fact_flight,
            True,
            suites.AUDITED["fact_flight"],
            "SELECT flight_key FROM scope_flights",
        ),
        CuratedTable("flight_passenger", ("raw.passenger_events",), _scope_flight_passenger, False),
        CuratedTable(
            "flight_passenger_load",
            ("curated.flight_passenger", "curated.fact_flight"),
            _scope_flight_passenger_load,
            True,
            suites.AUDITED["flight_passenger_load"],
            "SELECT flight_key FROM scope_flights",
        ),
        CuratedTable(
            "aircraft_position_latest",
            ("raw.position_reports",),
            _scope_aircraft_position_latest,
            False,
            suites.AUDITED["aircraft_position_latest"],
        ),
    )
}
"""The curated tables in an order that respects their dependencies."""


def touch_changed_dates(
    cur: Cursor, table: str, with_mart_dates: bool = False, dates_sql: str | None = None
) -> int:
    """Record the flight dates of the rows this transaction wrote in `table` as changed.

    The change number is drawn while the date's row is locked, so for any one date the numbers
    grow in commit order, and a mart partition refreshed at number N has seen every change <= N.
    `with_mart_dates` also marks every date the marts hold (a full refresh may drop flights);
    `dates_sql` replaces the dates of `table` (an audit's batch: published and withdrawn rows).
    """
    mart_dates = "UNION SELECT flight_date FROM marts.partition_state" if with_mart_dates else ""
    dates = dates_sql or (
        f"SELECT DISTINCT flight_date FROM {table} WHERE updated_xid = pg_current_xact_id()"
    )
    cur.execute(
        f"""INSERT INTO curated.changed_flight_dates AS c (flight_date, change_seq, changed_at)
            SELECT flight_date, nextval('curated.change_seq'), now()
            FROM ({dates} {mart_dates}) AS d
            ON CONFLICT (flight_date) DO UPDATE
            SET change_seq = nextval('curated.change_seq'), changed_at = now()"""
    )
    return cur.rowcount


def update_table(
    url: str, name: str, full_refresh: bool = False, run_id: str | None = None
) -> StepResult:
    """Bring `curated.<name>` up to date with its sources, in one transaction.

    Raises `AuditBlocked` (after recording the blocked batch) when the audit refuses the batch:
    then nothing is published and the watermarks stay where they were.
    """
    table = TABLES[name]
    result = StepResult(table=table.qualified, full_refresh=full_refresh)
    started = time.perf_counter()
    work_mem = "256MB" if full_refresh else "32MB"
    try:
        with transform_transaction(url, table.qualified, work_mem=work_mem) as cur:
            top = wm.horizon(cur)
            if full_refresh:
                cur.execute(
                    f"TRUNCATE {', '.join(dict.fromkeys([table.written, table.qualified]))}"
                )
                predicate = None
            else:
                marks = wm.get_watermarks(cur, table.qualified, list(table.sources))
                predicate, result.in_scope = table.scope(cur, marks)
                if (result.in_scope or 0) <= SMALL_SCOPE:
                    keep_to_indexes(cur)
            statement = scoped(load_sql("curated", name), predicate)
            cur.execute(without_upsert(statement) if full_refresh else statement)
            result.changed_rows = cur.rowcount
            dates_sql = None
            if table.audit:
                result.audit = audit_and_publish(
                    cur,
                    table.audit,
                    run_id=run_id,
                    rescope=None if full_refresh else table.rescope,
                    full_refresh=full_refresh,
                )
                if table.audit.date_column:
                    dates_sql = touched_dates_sql(table.audit)
            if table.feeds_marts:
                result.dates_touched = touch_changed_dates(
                    cur, table.qualified, full_refresh, dates_sql
                )
            wm.set_watermarks(cur, table.qualified, list(table.sources), top)
            result.watermark = top
    except AuditBlocked as blocked:
        _record_blocked(url, blocked.result)
        raise
    result.seconds = time.perf_counter() - started
    return result


def _record_blocked(url: str, audit: AuditResult) -> None:
    """Keep a trace of a refused batch: its transaction rolled back with everything else."""
    conn = connect(url)
    try:
        with conn, conn.cursor() as cur:
            record_batch(cur, audit)
    finally:
        conn.close()


def update_all(url: str, full_refresh: bool = False) -> list[StepResult]:
    """Every curated table, in dependency order."""
    return [update_table(url, name, full_refresh) for name in TABLES]
