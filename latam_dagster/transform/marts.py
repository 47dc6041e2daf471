"""Refresh mart partitions (flight dates) and find the ones that are out of date.

`curated.changed_flight_dates` holds, per flight date, the number of the latest change of its
curated flights; `marts.partition_state` holds, per mart and date, the change number it was
refreshed at. A date is pending for a mart when its change number is higher. Refreshing reads the
change numbers before it reads the curated tables, so a change that lands during the refresh keeps
the date pending for the next run instead of being lost.
"""

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

import psycopg2.extensions

from latam_dagster.db import connection
from latam_dagster.transform.session import keep_to_indexes, transform_transaction
from latam_dagster.transform.sqlfiles import load_sql

MARTS: tuple[str, ...] = ("route_daily_performance", "airport_daily_traffic")
SMALL_SCOPE_DATES = 31
"""Up to this many dates, a refresh goes through indexes only (a backfill of years may scan)."""


@dataclass
class MartRefresh:
    """What one refresh of a mart did."""

    mart: str
    start: date
    end: date
    only_pending: bool
    dates_refreshed: int
    rows: int
    seconds: float

    def as_metadata(self) -> dict:
        return {
            "range": f"{self.start.isoformat()}..{self.end.isoformat()}",
            "mode": "pending dates only" if self.only_pending else "every date in range",
            "dates_refreshed": self.dates_refreshed,
            "rows": self.rows,
            "seconds": round(self.seconds, 3),
        }


_SCOPE_ALL = """
CREATE TEMP TABLE scope_dates ON COMMIT DROP AS
SELECT d::date AS flight_date, coalesce(c.change_seq, 0) AS seen_seq
FROM generate_series(%(start)s::date, %(end)s::date, interval '1 day') AS d
LEFT JOIN curated.changed_flight_dates AS c ON c.flight_date = d::date"""

_SCOPE_PENDING = """
CREATE TEMP TABLE scope_dates ON COMMIT DROP AS
SELECT c.flight_date, c.change_seq AS seen_seq
FROM curated.changed_flight_dates AS c
LEFT JOIN marts.partition_state AS s ON s.mart = %(mart)s AND s.flight_date = c.flight_date
WHERE c.flight_date BETWEEN %(start)s AND %(end)s
  AND (s.refreshed_seq IS NULL OR s.refreshed_seq < c.change_seq)"""


def refresh_mart(
    url: str, mart: str, start: date, end: date, only_pending: bool = False
) -> MartRefresh:
    """Recompute `marts.<mart>` for the dates start..end (or only the pending ones among them)."""
    if mart not in MARTS:
        raise ValueError(f"unknown mart {mart!r}")
    started = time.perf_counter()
    params = {"mart": mart, "start": start, "end": end}
    with transform_transaction(url, f"marts.{mart}") as cur:
        cur.execute(_SCOPE_PENDING if only_pending else _SCOPE_ALL, params)
        cur.execute("ANALYZE scope_dates")
        cur.execute("SELECT count(*) FROM scope_dates")
        if cur.fetchone()[0] <= SMALL_SCOPE_DATES:
            keep_to_indexes(cur)
        cur.execute(load_sql("marts", mart))
        cur.execute(
            f"""INSERT INTO marts.partition_state AS p (mart, flight_date, refreshed_seq, rows)
                SELECT %(mart)s, s.flight_date, s.seen_seq,
                       (SELECT count(*) FROM marts.{mart} AS m WHERE m.flight_date = s.flight_date)
                FROM scope_dates AS s
                ON CONFLICT (mart, flight_date) DO UPDATE
                SET refreshed_seq = greatest(p.refreshed_seq, excluded.refreshed_seq),
                    rows = excluded.rows, refreshed_at = now()""",
            params,
        )
        dates = cur.rowcount
        cur.execute(
            f"""SELECT count(*) FROM marts.{mart}
                WHERE flight_date IN (SELECT flight_date FROM scope_dates)"""
        )
        rows = int(cur.fetchone()[0])
    return MartRefresh(mart, start, end, only_pending, dates, rows, time.perf_counter() - started)


def pending_dates(
    conn: psycopg2.extensions.connection, marts: Sequence[str] = MARTS
) -> dict[date, int]:
    """Flight dates pending for any of `marts`, with their latest change number."""
    with conn.cursor() as cur:
        cur.execute(
            """SELECT c.flight_date, c.change_seq
               FROM curated.changed_flight_dates AS c
               WHERE EXISTS (
                   SELECT 1 FROM unnest(%s::text[]) AS m(mart)
                   LEFT JOIN marts.partition_state AS s
                          ON s.mart = m.mart AND s.flight_date = c.flight_date
                   WHERE s.refreshed_seq IS NULL OR s.refreshed_seq < c.change_seq)
               ORDER BY c.flight_date""",
            (list(marts),),
        )
        return {d: int(seq) for d, seq in cur.fetchall()}


def pending_dates_at(url: str, marts: Sequence[str] = MARTS) -> dict[date, int]:
    """`pending_dates` with a connection of its own."""
    with connection(url) as conn:
        return pending_dates(conn, marts)


def date_ranges(dates: Iterable[date], max_gap_days: int = 7) -> list[tuple[date, date]]:
    """Group dates into (first, last) ranges, merging ranges separated by short gaps.

    A run covers a contiguous range of partitions; merging near neighbours trades a few idle
    partitions for fewer runs.
    """
    ranges: list[tuple[date, date]] = []
    for d in sorted(set(dates)):
        if ranges and (d - ranges[-1][1]).days <= max_gap_days + 1:
            ranges[-1] = (ranges[-1][0], d)
        else:
            ranges.append((d, d))
    return ranges


def split_in_bounds(
    dates: Iterable[date], first: date, last: date
) -> tuple[list[date], list[date]]:
    """(dates within first..last, dates outside): only the former have a partition."""
    inside, outside = [], []
    for d in dates:
        (inside if first <= d <= last else outside).append(d)
    return inside, outside


def _dates_message(dates: tuple[date, ...], template: str, **extra: str) -> str | None:
    """`template` filled in with the number of `dates` ({n}), the first and the last ({lo},
    {hi}) and `extra`; None without dates."""
    if not dates:
        return None
    return template.format(n=len(dates), lo=dates[0], hi=dates[-1], **extra)


@dataclass(frozen=True)
class DatesOutside:
    """Pending flight dates that no mart partition covers, split by side.

    They stay pending without a run to refresh them, so every place a person looks (sensor tick,
    quality report, run-once, metrics) says the same thing about them.
    """

    first: date
    last: date
    before: tuple[date, ...]
    after: tuple[date, ...]

    def __bool__(self) -> bool:
        return bool(self.before or self.after)

    def before_message(self, then: str = "reload the code location") -> str | None:
        """What waits before LATAM_PARTITION_START, and the setting that brings it in."""
        return _dates_message(
            self.before,
            "{n} flight date(s) wait outside the mart partitions ({lo}..{hi}): "
            "set LATAM_PARTITION_START={lo} (or earlier) and {then} to bring them in",
            then=then,
        )

    def after_message(self) -> str | None:
        """Future dates need no change: their partitions appear on their day."""
        return _dates_message(
            self.after,
            "{n} flight date(s) in the future wait for their partitions "
            "({lo}..{hi}): each partition appears on its day (UTC) and the marts refresh it "
            "then; nothing to change unless these dates are wrong",
        )

    def messages(self, then: str = "reload the code location") -> list[str]:
        return [m for m in (self.before_message(then), self.after_message()) if m]

    def as_dict(self) -> dict:
        def side(dates: tuple[date, ...]) -> dict:
            return {
                "dates": len(dates),
                "first": dates[0].isoformat() if dates else None,
                "last": dates[-1].isoformat() if dates else None,
            }

        return {
            "partitions": f"{self.first.isoformat()}..{self.last.isoformat()}",
            "before": side(self.before),
            "after": side(self.after),
            "messages": self.messages(),
        }


def dates_outside(pending: Iterable[date], first: date, last: date) -> DatesOutside:
    """The pending dates before `first` and after `last` (the partitions' bounds), sorted."""
    dates = sorted(set(pending))
    return DatesOutside(
        first,
        last,
        tuple(d for d in dates if d < first),
        tuple(d for d in dates if d > last),
    )


def partition_bounds_for(partition_start: str, today: date | None = None) -> tuple[date, date]:
    """The partitions' bounds as the settings define them (LATAM_PARTITION_START..today, UTC),
    for processes that do not load the Dagster definitions."""
    return date.fromisoformat(partition_start), today or datetime.now(UTC).date()


def refresh_pending(
    url: str, first: date | None = None, last: date | None = None, max_gap_days: int = 7
) -> list[MartRefresh]:
    """Refresh every mart for the pending dates between first and last (None: unbounded)."""
    pending = pending_dates_at(url)
    lo, hi = first or date.min, last or date.max
    inside, _outside = split_in_bounds(pending, lo, hi)
    return [
        refresh_mart(url, mart, start, end, only_pending=True)
        for start, end in date_ranges(inside, max_gap_days)
        for mart in MARTS
    ]
