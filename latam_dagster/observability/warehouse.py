"""Warehouse metrics: ingest counts, quarantine, rows per table, freshness and processing lag.

Every query is bounded by an index or by a small table, so a collection costs the same on a
warehouse of a thousand rows and of a billion:

- ingest counts per queue and source_system are kept incrementally: each collection counts only
  the raw rows of the transactions that settled since the previous one (`ingest_xid` between the
  last horizon and the current one, the same watermark rule the curated layer uses), so a row
  committed out of order is counted exactly once;
- the newest event_time of a table is maintained the same way from the rows written since the
  last collection;
- processing lag (how long the oldest input of a table has waited for it) reads the first row past
  the table's watermark through the xid index;
- rows per table are exact below a size threshold and the planner's live-row estimate above it;
- the quarantine and the message_id conflicts are read whole: both hold only the exceptions;
- pending mart dates are read from `curated.changed_flight_dates`, one row per flight date.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import psycopg2
import psycopg2.extensions

from latam_dagster.db import connect
from latam_dagster.ingest.topology import QUEUES, ROUTING_PREFIX, Topology
from latam_dagster.observability.families import Families, LabelGuard, per_key
from latam_dagster.settings import get_quality_settings
from latam_dagster.tables import REGISTRY
from latam_dagster.transform.marts import MARTS

log = logging.getLogger(__name__)

AUDIT_WINDOW_SECONDS = 900
LAYERS = ("raw", "curated", "marts", "quality")
# curated tables whose rows carry the time of the newest event they reflect
CURATED_EVENT_TIME = {
    t.qualified: t.event_time_column for t in REGISTRY.curated() if t.event_time_column
}
CATCH_UP_TIMEOUT_MS = 600_000  # the first pass over a large history may take a while
# (metric, help) of the events written to raw
INSERTED_TOTAL = (
    "latam_ingest_inserted_events_total",
    "Events written to raw (first delivery of each message_id), by queue and source.",
)
# (metric, help) of the freshness of a table
NEWEST_EVENT = (
    "latam_table_newest_event_timestamp_seconds",
    "Newest event_time in the table (Unix time).",
)
FRESHNESS_LAG = (
    "latam_table_freshness_lag_seconds",
    "Now minus the newest event_time the table reflects.",
)
LAST_WRITE = (
    "latam_table_last_write_timestamp_seconds",
    "When the pipeline last wrote a row of the table (Unix time).",
)


@dataclass
class _Newest:
    """What the collector knows of one table's newest rows."""

    lo_xid: int = 0
    newest_event: float | None = None
    last_write: float | None = None


@dataclass
class _RawTable:
    table: str
    family: str
    routing_prefix: str
    state: _Newest = field(default_factory=_Newest)


@dataclass(frozen=True)
class _PerSource:
    """A table of exceptions, read whole (it holds only the exceptions): its rows are (`label`
    value, source_system, n, m), summed per label value and source into a counter of n and a
    gauge of m, each a (metric, help)."""

    table: str
    sql: str
    label: str
    counter: tuple[str, str]
    gauge: tuple[str, str]


QUARANTINE = _PerSource(
    "raw.quarantine",
    """SELECT queue, split_part(coalesce(routing_key, ''), '.', 2) AS source,
              count(*), count(*) FILTER (WHERE replayed_at IS NULL)
       FROM raw.quarantine GROUP BY 1, 2""",
    "queue",
    (
        "latam_ingest_quarantined_messages_total",
        "Messages quarantined for breaking the contract (redeliveries counted once).",
    ),
    ("latam_quarantine_open_messages", "Quarantined messages not replayed yet."),
)
# quarantined by the drain's identity check (reason `identity: ...`, docs/sources.md); the routing
# key's second word is the system whose user was allowed to write it
IDENTITY = _PerSource(
    "raw.quarantine",
    """SELECT queue, split_part(coalesce(routing_key, ''), '.', 2) AS source,
              count(*), count(*) FILTER (WHERE replayed_at IS NULL)
       FROM raw.quarantine WHERE reason LIKE 'identity:%' GROUP BY 1, 2""",
    "queue",
    (
        "latam_ingest_identity_rejected_messages_total",
        "Messages quarantined because their source_system is not their publishing user.",
    ),
    (
        "latam_quarantine_identity_open_messages",
        "Identity-rejected messages in the quarantine not replayed yet.",
    ),
)
# message_ids seen again with a different body (the first body stays in raw)
CONFLICTS = _PerSource(
    "raw.message_id_conflicts",
    """SELECT raw_table, source_system, sum(times_seen)::bigint, count(DISTINCT message_id)
       FROM raw.message_id_conflicts GROUP BY 1, 2""",
    "table",
    (
        "latam_ingest_message_id_conflicts_total",
        "Messages whose message_id was already in raw with a different body (the first body is "
        "kept), by raw table and the source_system of the message that lost.",
    ),
    (
        "latam_ingest_conflicting_message_ids",
        "Distinct message_ids seen with more than one body, by raw table and source.",
    ),
)


def _layer(table: str) -> str:
    return table.split(".", 1)[0]


def _epoch(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


class WarehouseCollector:
    """Metrics read from the warehouse database (labels `queue`, `source_system`, `table`)."""

    name = "postgres"

    def __init__(
        self,
        url: str,
        topology: Topology,
        exact_count_max_rows: int = 1_000_000,
        max_source_systems: int = 500,
        statement_timeout_ms: int = 15_000,
        partition_start: str = "2020-01-01",
    ) -> None:
        self.url = url
        self.topology = topology
        self.exact_count_max_rows = exact_count_max_rows
        self.statement_timeout_ms = statement_timeout_ms
        self.partition_start = date.fromisoformat(partition_start)
        self._source = LabelGuard(max_source_systems)
        self._conn: psycopg2.extensions.connection | None = None
        self._raw = [
            _RawTable(table, family, ROUTING_PREFIX[etype])
            for family, (_pattern, table, etype) in QUEUES.items()
            if table and etype
        ]
        self._curated = {t: _Newest() for t in CURATED_EVENT_TIME}
        self._inserted: dict[tuple[str, str], int] = {}
        self._mart_first_seen: dict[tuple[str, date], tuple[int, float]] = {}
        self._last_collect: float | None = None

    # --- connection --------------------------------------------------------------------------

    def _cursor(self) -> psycopg2.extensions.cursor:
        if self._conn is None or self._conn.closed:
            self._conn = connect(
                self.url,
                application_name="latam-exporter",
                options=f"-c statement_timeout={self.statement_timeout_ms}",
            )
            self._conn.autocommit = True
        return self._conn.cursor()

    @contextmanager
    def _timeout(self, cur: psycopg2.extensions.cursor, ms: int) -> Iterator[None]:
        cur.execute("SELECT set_config('statement_timeout', %s, false)", (str(ms),))
        try:
            yield
        finally:
            cur.execute(
                "SELECT set_config('statement_timeout', %s, false)",
                (str(self.statement_timeout_ms),),
            )

    def close(self) -> None:
        if self._conn is not None and not self._conn.closed:
            self._conn.close()
        self._conn = None

    # --- collection --------------------------------------------------------------------------

    def collect(self, out: Families) -> None:
        try:
            with self._cursor() as cur:
                self._collect(cur, out)
        except (psycopg2.OperationalError, psycopg2.InterfaceError):
            self.close()  # reconnect next time
            raise

    def _collect(self, cur: psycopg2.extensions.cursor, out: Families) -> None:
        now = time.time()
        tables = self._tables(cur)
        cur.execute("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
        horizon = int(cur.fetchone()[0])
        self._rows(cur, out, tables)
        self._ingest(cur, out, tables, horizon)
        self._per_source(cur, out, tables, QUARANTINE)
        self._per_source(cur, out, tables, IDENTITY)
        self._per_source(cur, out, tables, CONFLICTS, known={raw.table for raw in self._raw})
        self._curated_newest(cur, tables, horizon)
        lags = self._processing_lag(cur, out, tables, now)
        self._marts(cur, out, tables, now, lags)
        self._marts_outside(cur, out, tables)
        self._audit(cur, out, tables)
        self._freshness(out, now)
        self._last_collect = now

    def _tables(self, cur: psycopg2.extensions.cursor) -> dict[str, int]:
        """Every table of the warehouse layers that the exporter's role may read (a column of it
        is enough to count its rows), with its estimated row count."""
        cur.execute(
            """SELECT n.nspname || '.' || c.relname,
                      greatest(c.reltuples, coalesce(s.n_live_tup, 0), 0)::bigint
               FROM pg_class AS c
               JOIN pg_namespace AS n ON n.oid = c.relnamespace
               LEFT JOIN pg_stat_user_tables AS s ON s.relid = c.oid
               WHERE n.nspname = ANY(%s) AND c.relkind IN ('r', 'p')
                 AND has_any_column_privilege(c.oid, 'SELECT')""",
            (list(LAYERS),),
        )
        return {name: int(estimate) for name, estimate in cur.fetchall()}

    def _rows(self, cur: psycopg2.extensions.cursor, out: Families, tables: dict[str, int]) -> None:
        for table, estimate in sorted(tables.items()):
            rows = estimate
            if estimate < self.exact_count_max_rows:
                cur.execute(f"SELECT count(*) FROM {table}")  # noqa: S608 (name from pg_class)
                rows = int(cur.fetchone()[0])
            out.gauge(
                "latam_table_rows",
                "Rows in the table (exact below LATAM_EXPORTER_EXACT_COUNT_MAX_ROWS, else the "
                "planner's estimate).",
                rows,
                layer=_layer(table),
                table=table,
            )

    def _ingest(
        self,
        cur: psycopg2.extensions.cursor,
        out: Families,
        tables: dict[str, int],
        horizon: int,
    ) -> None:
        """Count the raw rows of transactions settled since the last collection."""
        unrouted = self.topology.queue("unrouted")
        for raw in self._raw:
            if raw.table not in tables:
                continue
            queue = self.topology.queue(raw.family)
            timeout = CATCH_UP_TIMEOUT_MS if raw.state.lo_xid == 0 else self.statement_timeout_ms
            with self._timeout(cur, timeout):
                # counts stop at the horizon (settled transactions, counted once); the newest
                # event and write times also take what committed above it (max is idempotent)
                cur.execute(
                    f"""SELECT source_system,
                               coalesce(routing_key LIKE %(prefix)s, true) AS routed,
                               count(*) FILTER (WHERE ingest_xid < %(hi)s::text::xid8),
                               max(event_time), max(received_at)
                        FROM {raw.table}
                        WHERE ingest_xid >= %(lo)s::text::xid8
                        GROUP BY 1, 2""",
                    {
                        "prefix": raw.routing_prefix + ".%",
                        "lo": str(raw.state.lo_xid),
                        "hi": str(horizon),
                    },
                )
                found = cur.fetchall()
            for source, routed, count, newest_event, last_write in found:
                key = (queue if routed else unrouted, self._source(source))
                self._inserted[key] = self._inserted.get(key, 0) + int(count)
                raw.state.newest_event = max(
                    filter(None, (raw.state.newest_event, _epoch(newest_event))), default=None
                )
                raw.state.last_write = max(
                    filter(None, (raw.state.last_write, _epoch(last_write))), default=None
                )
            raw.state.lo_xid = max(raw.state.lo_xid, horizon)
        per_key(out.counter, *INSERTED_TOTAL, self._inserted, "queue", "source_system")

    def _per_source(
        self,
        cur: psycopg2.extensions.cursor,
        out: Families,
        tables: dict[str, int],
        spec: _PerSource,
        known: set[str] | None = None,
    ) -> None:
        """The sums of `spec`, with a label value outside `known` (when given) and a source outside
        the contract's pattern counted as `unknown`."""
        if spec.table not in tables:
            return
        cur.execute(spec.sql)
        counted: Counter[tuple[str, str]] = Counter()
        current: Counter[tuple[str, str]] = Counter()
        for value, source, n, m in cur.fetchall():
            key = (
                value if known is None or value in known else "unknown",
                self._source(source if _valid_source(source or "") else "unknown"),
            )
            counted[key] += int(n)
            current[key] += int(m)
        per_key(out.counter, *spec.counter, counted, spec.label, "source_system")
        per_key(out.gauge, *spec.gauge, current, spec.label, "source_system")

    def _curated_newest(
        self, cur: psycopg2.extensions.cursor, tables: dict[str, int], horizon: int
    ) -> None:
        for table, column in CURATED_EVENT_TIME.items():
            if table not in tables:
                continue
            state = self._curated[table]
            timeout = CATCH_UP_TIMEOUT_MS if state.lo_xid == 0 else self.statement_timeout_ms
            with self._timeout(cur, timeout):
                cur.execute(
                    f"""SELECT max({column}), max(updated_at) FROM {table}
                        WHERE updated_xid >= %s::text::xid8""",
                    (str(state.lo_xid),),
                )
                newest_event, last_write = cur.fetchone()
            state.newest_event = max(
                filter(None, (state.newest_event, _epoch(newest_event))), default=None
            )
            state.last_write = max(
                filter(None, (state.last_write, _epoch(last_write))), default=None
            )
            state.lo_xid = max(state.lo_xid, horizon)

    def _oldest_unprocessed(
        self, cur: psycopg2.extensions.cursor, source: str, watermark: int
    ) -> float | None:
        """When the first row past `watermark` in `source` was written (None: nothing waits)."""
        xid_col, time_col = (
            ("ingest_xid", "received_at")
            if source.startswith("raw.")
            else ("updated_xid", "updated_at")
        )
        cur.execute(
            f"""SELECT {time_col} FROM {source} WHERE {xid_col} >= %s::text::xid8
                ORDER BY {xid_col} LIMIT 1""",
            (str(watermark),),
        )
        row = cur.fetchone()
        return _epoch(row[0]) if row else None

    def _processing_lag(
        self,
        cur: psycopg2.extensions.cursor,
        out: Families,
        tables: dict[str, int],
        now: float,
    ) -> dict[str, float]:
        """Per curated table: how long its oldest unprocessed input has waited (0: caught up).

        A table is as late as its most late input, and as late as the curated tables it reads.
        """
        if "curated.watermarks" not in tables:
            return {}
        cur.execute("SELECT consumer, source, xid::text::bigint FROM curated.watermarks")
        marks: dict[tuple[str, str], int] = {(c, s): int(x) for c, s, x in cur.fetchall()}
        lags: dict[str, float] = {}
        for spec in REGISTRY.curated():
            table = spec.qualified
            if table not in tables:
                continue
            lag = 0.0
            for source in spec.inputs:
                if source not in tables:
                    continue
                since = self._oldest_unprocessed(cur, source, marks.get((table, source), 0))
                waited = max(0.0, now - since) if since is not None else 0.0
                lag = max(lag, waited, lags.get(source, 0.0))
            lags[table] = lag
            out.gauge(
                "latam_table_processing_lag_seconds",
                "How long the oldest input not yet reflected in the table has waited (0: caught up).",
                lag,
                layer="curated",
                table=table,
            )
        return lags

    def _marts(
        self,
        cur: psycopg2.extensions.cursor,
        out: Families,
        tables: dict[str, int],
        now: float,
        lags: dict[str, float],
    ) -> None:
        """Pending partitions per mart and how long the oldest pending change has waited."""
        if not {"curated.changed_flight_dates", "marts.partition_state"} <= tables.keys():
            return
        today = datetime.now(UTC).date()
        cur.execute(
            """SELECT m.mart, c.flight_date, coalesce(p.refreshed_seq, -1),
                      c.changed_at
               FROM unnest(%s::text[]) AS m(mart)
               JOIN curated.changed_flight_dates AS c
                 ON c.flight_date BETWEEN %s AND %s
               LEFT JOIN marts.partition_state AS p
                      ON p.mart = m.mart AND p.flight_date = c.flight_date
               WHERE p.refreshed_seq IS NULL OR p.refreshed_seq < c.change_seq""",
            (list(MARTS), self.partition_start, today),
        )
        pending: dict[str, list[float]] = {m: [] for m in MARTS}
        seen: dict[tuple[str, date], tuple[int, float]] = {}
        for mart, flight_date, refreshed_seq, changed_at in cur.fetchall():
            key = (mart, flight_date)
            first = self._mart_first_seen.get(key)
            if first is None or first[0] != refreshed_seq:
                # newly pending: the first unreflected change came after the previous look
                since = self._last_collect if self._last_collect is not None else _epoch(changed_at)
                first = (refreshed_seq, min(since or now, now))
            seen[key] = first
            pending[mart].append(first[1])
        self._mart_first_seen = seen
        upstream = max(
            lags.get("curated.fact_flight", 0.0), lags.get("curated.flight_passenger_load", 0.0)
        )
        for mart, firsts in pending.items():
            table = f"marts.{mart}"
            if table not in tables:
                continue
            waited = now - min(firsts) if firsts else 0.0
            out.gauge(
                "latam_mart_pending_partitions",
                "Flight dates whose curated data changed since the mart last refreshed them.",
                len(firsts),
                table=table,
            )
            out.gauge(
                "latam_table_processing_lag_seconds",
                "How long the oldest input not yet reflected in the table has waited (0: caught up).",
                max(waited, upstream),
                layer="marts",
                table=table,
            )
            newest = self._curated["curated.fact_flight"].newest_event
            if newest is not None:
                # the mart reflects curated as it was when its oldest pending change arrived
                out.gauge(
                    "latam_table_freshness_lag_seconds",
                    "Now minus the newest event_time the table reflects.",
                    max(0.0, now - newest) + waited,
                    layer="marts",
                    table=table,
                )

    def _marts_outside(
        self, cur: psycopg2.extensions.cursor, out: Families, tables: dict[str, int]
    ) -> None:
        """Pending flight dates that no mart partition covers, which the lag above leaves out.

        No run refreshes them, so without this gauge a replay of old history waits unseen.
        """
        if not {"curated.changed_flight_dates", "marts.partition_state"} <= tables.keys():
            return
        first, last = self.partition_start, datetime.now(UTC).date()
        cur.execute(
            """SELECT count(*) FILTER (WHERE c.flight_date < %(first)s),
                      count(*) FILTER (WHERE c.flight_date > %(last)s)
               FROM curated.changed_flight_dates AS c
               WHERE (c.flight_date < %(first)s OR c.flight_date > %(last)s)
                 AND EXISTS (
                     SELECT 1 FROM unnest(%(marts)s::text[]) AS m(mart)
                     LEFT JOIN marts.partition_state AS s
                            ON s.mart = m.mart AND s.flight_date = c.flight_date
                     WHERE s.refreshed_seq IS NULL OR s.refreshed_seq < c.change_seq)""",
            {"first": first, "last": last, "marts": list(MARTS)},
        )
        before, after = cur.fetchone()
        for side, count in (("before", before), ("after", after)):
            out.gauge(
                "latam_mart_dates_outside_partitions",
                "Pending flight dates no mart partition covers: before LATAM_PARTITION_START "
                "(they wait until it is set earlier) or after today, UTC (their partition "
                "appears on their day).",
                count,
                side=side,
            )

    def _audit(
        self, cur: psycopg2.extensions.cursor, out: Families, tables: dict[str, int]
    ) -> None:
        """What the audit of the curated micro-batches holds back and refuses.

        Rows held back per table and rule (they wait in quality.rejects), and over the last
        AUDIT_WINDOW the share of audited rows held back and the batches blocked, next to the
        threshold, so an alert can compare them.
        """
        if not {"quality.rejects", "quality.audit_batch"} <= tables.keys():
            return
        out.declare_gauge(
            "latam_quality_rows_held_back",
            "Curated rows held back from publication by a row rule (quality.rejects).",
            "table",
            "rule",
        )
        cur.execute("SELECT table_name, rule, count(*) FROM quality.rejects GROUP BY 1, 2")
        for table, rule, count in sorted(cur.fetchall()):
            out.gauge(
                "latam_quality_rows_held_back",
                "Curated rows held back from publication by a row rule (quality.rejects).",
                count,
                table=table,
                rule=rule,
            )
        cur.execute(
            """SELECT table_name, sum(audited_rows), sum(held_rows),
                      count(*) FILTER (WHERE blocked), count(*)
               FROM quality.audit_batch
               WHERE audited_at >= now() - make_interval(secs => %s)
               GROUP BY table_name ORDER BY table_name""",
            (AUDIT_WINDOW_SECONDS,),
        )
        for table, audited, held, blocked, batches in cur.fetchall():
            pct = 100.0 * float(held) / float(audited) if audited else 0.0
            out.gauge(
                "latam_quality_audit_reject_pct",
                "Share of the rows audited over the last 15 min that row rules held back (%).",
                pct,
                table=table,
            )
            out.gauge(
                "latam_quality_audit_blocked_batches",
                "Batches refused over the last 15 min (a table rule failed or the reject share "
                "passed LATAM_QUALITY_REJECT_MAX_PCT): nothing of them was published.",
                blocked,
                table=table,
            )
            out.gauge(
                "latam_quality_audit_batches",
                "Batches audited over the last 15 min.",
                batches,
                table=table,
            )
        out.gauge(
            "latam_quality_reject_max_pct",
            "LATAM_QUALITY_REJECT_MAX_PCT: the reject share above which a batch is refused (%).",
            get_quality_settings().reject_max_pct,
        )

    def _freshness(self, out: Families, now: float) -> None:
        states = {raw.table: raw.state for raw in self._raw} | self._curated
        for table, state in sorted(states.items()):
            labels = {"layer": _layer(table), "table": table}
            if state.newest_event is not None:
                out.gauge(*NEWEST_EVENT, state.newest_event, **labels)
                out.gauge(*FRESHNESS_LAG, max(0.0, now - state.newest_event), **labels)
            if state.last_write is not None:
                out.gauge(*LAST_WRITE, state.last_write, **labels)


def _valid_source(value: str) -> bool:
    """The contract's source_system pattern, `[a-z0-9_-]{1,64}`."""
    return 0 < len(value) <= 64 and all(c.isdigit() or "a" <= c <= "z" or c in "_-" for c in value)
