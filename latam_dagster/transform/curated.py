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
from dataclasses import dataclass
from typing import Any

import psycopg2.extensions

from latam_dagster.db import connect
from latam_dagster.quality.audit import (
    AuditBlocked,
    AuditResult,
    audit_and_publish,
    record_batch,
    touched_dates_sql,
)
from latam_dagster.tables import REGISTRY, Table
from latam_dagster.transform import watermarks as wm
from latam_dagster.transform.session import keep_to_indexes, transform_transaction
from latam_dagster.transform.sqlfiles import scoped, without_upsert

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


TABLES: dict[str, Table] = REGISTRY.curated_by_name()
"""The curated tables the transforms compute, by name, in an order that respects dependencies."""


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
    url: str, name: str | Table, full_refresh: bool = False, run_id: str | None = None
) -> StepResult:
    """Bring a curated table (by name or declaration) up to date with its inputs, in one
    transaction. A table without a scope function is recomputed whole on every run.

    Raises `AuditBlocked` (after recording the blocked batch) when the audit refuses the batch:
    then nothing is published and the watermarks stay where they were.
    """
    table = name if isinstance(name, Table) else TABLES[name]
    full_refresh = full_refresh or table.scope is None
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
                marks = wm.get_watermarks(cur, table.qualified, list(table.inputs))
                predicate, result.in_scope = table.scope(cur, marks)
                if (result.in_scope or 0) <= SMALL_SCOPE:
                    keep_to_indexes(cur)
            if table.scope is None:  # recomputed whole: the SQL runs as written
                statement = table.sql()
            else:
                statement = scoped(table.sql(), predicate)
                statement = without_upsert(statement) if full_refresh else statement
            cur.execute(statement)
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
            wm.set_watermarks(cur, table.qualified, list(table.inputs), top)
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
