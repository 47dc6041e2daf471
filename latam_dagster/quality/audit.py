"""Write-audit-publish: audit the rows a micro-batch computed, publish only the ones that pass.

The curated SQL writes every key it recomputes into `staging.<table>`. In the same transaction
this module audits those rows (and the held-back rows whose inputs changed) against the table's
rules, compiled to SQL predicates from the very expectations Great Expectations validates:

- a failing **row rule** holds back only its rows: they go to `quality.rejects` (key, rule, the
  rule's observed values, run id, first and last seen) and are withdrawn from `curated.<table>`;
  they are audited again whenever the curated SQL recomputes them or their scope includes them
  (a later event, an airport arriving in `dim_airport`), and published when they pass;
- a failing **table rule** (keys unique, consistency between tables) or a reject share above
  LATAM_QUALITY_REJECT_MAX_PCT (with at least LATAM_QUALITY_REJECT_MIN_ROWS rows held back)
  blocks the publish: `AuditBlocked` is raised, the transaction rolls back, the watermarks stay,
  and every asset downstream is skipped until the data or the threshold is fixed.

The audit costs a few index lookups per batch and never loads Great Expectations, which keeps
validating whole published tables on its own schedule.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import psycopg2.extensions

from latam_dagster.quality.failing_rows import Relation, literal, rejected_condition
from latam_dagster.settings import get_quality_settings
from latam_dagster.tables.rules import Expect, Rule
from latam_dagster.tables.table import AuditedTable

Cursor = psycopg2.extensions.cursor
QUERY_EXPECTATION = "UnexpectedRowsExpectation"
REFERENCE_EXPECTATION = "ExpectColumnValuesToBeInReferenceTable"
UNIQUENESS = ("ExpectColumnValuesToBeUnique", "ExpectCompoundColumnsToBeUnique")
REJECT_SHARE_CHECK = "reject_share"
SAMPLE_KEYS = 20
BATCH = "audit_batch_rows"
DATES = "audit_touched_dates"
"""The audited rows of staging, as a relation the compiled predicates and queries read."""


@dataclass
class RuleAudit:
    """One rule's verdict on a batch: rows failing each expectation, or the table-level count."""

    rule: Rule
    failing_rows: int
    expectation_failures: list[int]

    @property
    def passed(self) -> bool:
        return self.failing_rows == 0


@dataclass
class AuditResult:
    """What the audit of one batch found and published; becomes check evaluations and metadata."""

    table: AuditedTable
    run_id: str | None
    audited: int = 0
    published: int = 0
    held: int = 0
    newly_held: int = 0
    """Held rows that were not held before this batch: only these count toward the share."""
    withdrawn: int = 0
    rules: list[RuleAudit] = field(default_factory=list)
    failing_keys: dict[str, list[str]] = field(default_factory=dict)
    """Up to SAMPLE_KEYS keys per failing rule: what a refused batch leaves to look at."""
    max_pct: float = 0.0
    min_rows: int = 0
    blocked_reason: str | None = None
    seconds: float = 0.0

    @property
    def reject_pct(self) -> float:
        return round(100.0 * self.held / self.audited, 3) if self.audited else 0.0

    @property
    def new_reject_pct(self) -> float:
        return round(100.0 * self.newly_held / self.audited, 3) if self.audited else 0.0

    @property
    def share_exceeded(self) -> bool:
        """Too many rows of this batch newly fail row rules. Rows already held back and only
        audited again (a later event for the same flight, a full refresh) do not count: they
        were accepted as held back when they first failed, and counting them again would let a
        few old rejects block every later batch that touches them."""
        return self.newly_held >= max(self.min_rows, 1) and self.new_reject_pct > self.max_pct

    def rule_counts(self) -> dict[str, int]:
        return {r.rule.name: r.failing_rows for r in self.rules}

    def as_metadata(self) -> dict[str, Any]:
        return {
            "audited_rows": self.audited,
            "published_rows": self.published,
            "held_back_rows": self.held,
            "newly_held_back_rows": self.newly_held,
            "withdrawn_rows": self.withdrawn,
            "reject_pct": self.reject_pct,
            "audit_seconds": round(self.seconds, 3),
        }


class AuditBlocked(Exception):
    """A table rule failed or too many rows were held back: nothing of the batch is published."""

    def __init__(self, result: AuditResult) -> None:
        super().__init__(result.blocked_reason)
        self.result = result


def _row_condition(expect: Expect, table: AuditedTable) -> str | None:
    """SQL true for an audited row (alias `s`) that the expectation rejects."""
    if expect.kind == QUERY_EXPECTATION:
        query = expect.kwargs["unexpected_rows_query"].replace("{batch}", BATCH)
        return f"s.{table.key} IN (SELECT q.{table.key} FROM ({query}) AS q)"
    if expect.kind in UNIQUENESS:
        return None
    if expect.kind == REFERENCE_EXPECTATION:
        # one index lookup per row: NOT IN would hash the whole reference table every batch
        kw = expect.kwargs
        col = f"s.{kw['column']}"
        return (
            f"{col} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {kw['reference_table']} AS ref "
            f"WHERE ref.{kw['reference_column']} = {col})"
        )
    condition = rejected_condition(expect, Relation(table.staging), dict(expect.kwargs))
    if condition is None:
        raise ValueError(f"{table.name}: the audit cannot compile {expect.label()}")
    return condition


def _columns(cur: Cursor, relation: str) -> list[str]:
    cur.execute(
        """SELECT attname FROM pg_attribute
           WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum""",
        (relation,),
    )
    return [r[0] for r in cur.fetchall()]


def _audit_relation(
    cur: Cursor, table: AuditedTable, columns: list[str], rescope: str | None, everything: bool
) -> None:
    """Name the batch: rows written in this transaction plus held-back rows in scope.

    After a full refresh every staging row is in the batch: the batch is then a view of the
    table rather than a copy of it, which would double the refresh's writes.
    """
    if everything:
        cur.execute(f"CREATE OR REPLACE TEMP VIEW {BATCH} AS SELECT * FROM {table.staging}")
        return
    again = (
        f"""OR s.{table.key} IN (
                SELECT r.row_key FROM quality.rejects AS r
                WHERE r.table_name = {literal(table.published)} AND r.row_key IN ({rescope}))"""
        if rescope
        else ""
    )
    cur.execute(
        f"""CREATE TEMP TABLE {BATCH} ON COMMIT DROP AS
            SELECT {", ".join(f"s.{c}" for c in columns)} FROM {table.staging} AS s
            WHERE s.updated_xid = pg_current_xact_id() {again}"""
    )
    cur.execute(f"CREATE UNIQUE INDEX ON {BATCH} ({table.key})")
    cur.execute(f"ANALYZE {BATCH}")


def _table_violations(
    cur: Cursor, expect: Expect, table: AuditedTable, condition: str | None, keys: list[str]
) -> int:
    """Rows of the batch breaking a table-level expectation; their first keys go to `keys`."""
    if expect.kind in UNIQUENESS and _unique_index(cur, table.staging, expect.columns):
        return 0  # the database itself refuses a second row with these values
    if expect.kind in UNIQUENESS:
        # the batch's rows that share their values with another row of the table: one index
        # lookup per row (the table declares an index on these columns)
        same = " AND ".join(f"t.{c} = b.{c}" for c in expect.columns)
        failing = f"""SELECT b.{table.key} AS k FROM {BATCH} AS b
                      JOIN {table.staging} AS t ON {same}
                      GROUP BY b.{table.key} HAVING count(*) > 1"""
    else:
        failing = (
            f"SELECT s.{table.key} AS k FROM {BATCH} AS s WHERE coalesce(({condition}), false)"
        )
    cur.execute(f"SELECT count(*) FROM ({failing}) AS d")
    count = int(cur.fetchone()[0])
    if count:
        cur.execute(f"SELECT k::text FROM ({failing}) AS d ORDER BY 1 LIMIT %s", (SAMPLE_KEYS,))
        keys.extend(r[0] for r in cur.fetchall())
    return count


def _unique_index(cur: Cursor, relation: str, columns: tuple[str, ...]) -> bool:
    """Whether a unique index of `relation` covers exactly `columns` (in any order)."""
    cur.execute(
        """SELECT EXISTS (
               SELECT 1 FROM pg_index AS i
               WHERE i.indrelid = %s::regclass AND i.indisunique AND i.indpred IS NULL
                 AND i.indexprs IS NULL
                 AND (SELECT array_agg(a.attname::text ORDER BY a.attname)
                      FROM pg_attribute AS a
                      WHERE a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey))
                     = (SELECT array_agg(c ORDER BY c) FROM unnest(%s::text[]) AS c))""",
        (relation, list(columns)),
    )
    return bool(cur.fetchone()[0])


def _observed_sql(rule: Rule) -> str:
    cols = list(dict.fromkeys(c for e in rule.expectations for c in e.columns))
    pairs = ", ".join(f"{literal(c)}, to_jsonb(s.{c})" for c in cols)
    return f"jsonb_build_object({pairs})"


def audit_and_publish(
    cur: Cursor,
    table: AuditedTable,
    *,
    run_id: str | None = None,
    rescope: str | None = None,
    full_refresh: bool = False,
) -> AuditResult:
    """Audit the batch in `staging.<table>`, record rejects, publish the rows that pass.

    `rescope` is SQL selecting the keys in the batch's scope; held-back rows among them are
    audited again even when the curated SQL left their staging row unchanged (their inputs, such as
    a reference table, may have changed). Raises `AuditBlocked` without publishing anything when a
    blocking table rule fails or the reject share passes its threshold.
    """
    started = time.perf_counter()
    qs = get_quality_settings()
    result = AuditResult(table, run_id, max_pct=qs.reject_max_pct, min_rows=qs.reject_min_rows)
    columns = _columns(cur, table.published)
    _audit_relation(cur, table, columns, rescope, everything=full_refresh)
    if not full_refresh:
        cur.execute(f"SELECT count(*) FROM {BATCH}")
        if cur.fetchone()[0] == 0:  # nothing changed: every rule holds, nothing to record
            result.rules = [RuleAudit(r, 0, [0] * len(r.expectations)) for r in table.suite.rules]
            _touched_dates(cur, table, empty=True)
            result.seconds = time.perf_counter() - started
            return result

    # one boolean per row expectation, evaluated in a single pass over the batch
    flags: list[tuple[Rule, list[str]]] = []
    table_checks: list[tuple[Rule, list[tuple[Expect, str | None]]]] = []
    select: list[str] = []
    for r_i, rule in enumerate(table.suite.rules):
        if rule.level == "row":
            names = []
            for e_i, expect in enumerate(rule.expectations):
                name = f"r{r_i}_e{e_i}"
                select.append(f"coalesce(({_row_condition(expect, table)}), false) AS {name}")
                names.append(name)
            flags.append((rule, names))
        else:
            table_checks.append((rule, [(e, _row_condition(e, table)) for e in rule.expectations]))
    held = " OR ".join(n for rule, names in flags if rule.holds_back for n in names) or "false"
    cur.execute(
        f"""CREATE TEMP TABLE audit_flags ON COMMIT DROP AS
            SELECT f.*, ({held}) AS held FROM (
                SELECT {", ".join([f"s.{table.key} AS row_key", *select])}
                FROM {BATCH} AS s) AS f"""
    )
    counts = ", ".join(
        [
            "count(*)",
            "count(*) FILTER (WHERE held)",
            *(f"count(*) FILTER (WHERE {n})" for _, names in flags for n in names),
        ]
    )
    cur.execute(f"SELECT {counts} FROM audit_flags")
    row = cur.fetchone()
    result.audited, result.held = int(row[0]), int(row[1])
    if result.held:
        cur.execute(
            """SELECT count(*) FROM audit_flags AS a WHERE a.held AND NOT EXISTS (
                   SELECT 1 FROM quality.rejects AS r
                   WHERE r.table_name = %s AND r.row_key = a.row_key)""",
            (table.published,),
        )
        result.newly_held = int(cur.fetchone()[0])
    per_flag = iter(int(v) for v in row[2:])
    for rule, names in flags:
        failures = [next(per_flag) for _ in names]
        if failures and any(failures):
            any_sql = " OR ".join(names)
            cur.execute(f"SELECT count(*) FROM audit_flags WHERE {any_sql}")
            failing = int(cur.fetchone()[0])
            cur.execute(
                f"SELECT row_key::text FROM audit_flags WHERE {any_sql} ORDER BY 1 LIMIT %s",
                (SAMPLE_KEYS,),
            )
            result.failing_keys[rule.name] = [r[0] for r in cur.fetchall()]
        else:
            failing = 0
        result.rules.append(RuleAudit(rule, failing, failures))
    for rule, expects in table_checks:
        keys: list[str] = []
        failures = [_table_violations(cur, e, table, c, keys) for e, c in expects]
        result.rules.append(RuleAudit(rule, sum(failures), failures))
        if keys:
            result.failing_keys[rule.name] = sorted(set(keys))[:SAMPLE_KEYS]

    broken = [
        r.rule.name
        for r in result.rules
        if r.rule.level != "row" and r.rule.blocking and not r.passed
    ]
    if broken:
        result.blocked_reason = f"{table.published}: table rule(s) failed: {', '.join(broken)}"
    elif result.share_exceeded:
        result.blocked_reason = (
            f"{table.published}: {result.newly_held} of {result.audited} row(s) of the batch "
            f"newly held back ({result.new_reject_pct:g}%), above "
            f"LATAM_QUALITY_REJECT_MAX_PCT={result.max_pct:g}%"
        )
    if result.blocked_reason:
        result.seconds = time.perf_counter() - started
        raise AuditBlocked(result)

    _touched_dates(cur, table)
    _record_rejects(cur, table, flags, run_id, full_refresh)
    _publish(cur, table, columns, result, emptied=full_refresh)
    if full_refresh:
        cur.execute(f"DROP VIEW {BATCH}")  # a view outlives the transaction, unlike the table
    result.seconds = time.perf_counter() - started
    record_batch(cur, result)
    return result


def _touched_dates(cur: Cursor, table: AuditedTable, empty: bool = False) -> None:
    """The dates whose published rows change: rows recomputed now, or published now.

    A held-back row audited again without change leaves its date alone, so a rescan of the same
    flights (a watermark held back by another transaction) refreshes no mart partition.
    """
    if not table.date_column:
        return
    where = "false" if empty else "b.updated_xid = pg_current_xact_id() OR NOT a.held"
    source = (
        f"{BATCH} AS b"
        if empty
        else f"{BATCH} AS b JOIN audit_flags AS a ON a.row_key = b.{table.key}"
    )
    cur.execute(
        f"""CREATE TEMP TABLE {DATES} ON COMMIT DROP AS
            SELECT DISTINCT b.{table.date_column} AS flight_date FROM {source} WHERE {where}"""
    )


def _record_rejects(cur, table: AuditedTable, flags, run_id: str | None, full_refresh: bool):
    """Upsert the held-back rows (first_seen kept), forget the batch's rows that now pass."""
    date_sql = f"s.{table.date_column}" if table.date_column else "NULL::date"
    parts = [
        f"""SELECT {literal(table.published)}, s.{table.key}::text, {literal(rule.name)},
                   {date_sql}, {_observed_sql(rule)}, %(run_id)s
            FROM audit_flags AS a JOIN {BATCH} AS s ON s.{table.key} = a.row_key
            WHERE {" OR ".join(f"a.{n}" for n in names)}"""
        for rule, names in flags
        if rule.holds_back
    ]
    if parts:
        cur.execute(
            f"""INSERT INTO quality.rejects AS r
                    (table_name, row_key, rule, flight_date, observed, run_id)
                {" UNION ALL ".join(parts)}
                ON CONFLICT (table_name, row_key, rule) DO UPDATE
                SET observed = excluded.observed, run_id = excluded.run_id,
                    flight_date = excluded.flight_date, last_seen = now()""",
            {"run_id": run_id},
        )
    # rows upserted above carry last_seen = now() (the transaction's start): older ones pass now
    only_batch = "" if full_refresh else "AND r.row_key IN (SELECT row_key FROM audit_flags)"
    cur.execute(
        f"""DELETE FROM quality.rejects AS r
            WHERE r.table_name = %s AND r.last_seen < now() {only_batch}""",
        (table.published,),
    )


def _publish(
    cur, table: AuditedTable, columns: list[str], result: AuditResult, emptied: bool
) -> None:
    """Withdraw the held-back rows from curated.<table>, upsert the ones that passed.

    After a full refresh (`emptied`: curated.<table> was truncated in this transaction) the
    rows that pass are appended as they are: no withdrawal, no conflict to look for.
    """
    if not emptied:
        cur.execute(
            f"""DELETE FROM {table.published} AS c USING audit_flags AS a
                WHERE c.{table.key} = a.row_key AND a.held"""
        )
        result.withdrawn = cur.rowcount
    cols = ", ".join(columns)
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c != table.key)
    upsert = "" if emptied else f"ON CONFLICT ({table.key}) DO UPDATE SET {updates}"
    cur.execute(
        f"""INSERT INTO {table.published} AS c ({cols})
            SELECT {", ".join(f"s.{c}" for c in columns)}
            FROM {BATCH} AS s JOIN audit_flags AS a ON a.row_key = s.{table.key}
            WHERE NOT a.held {upsert}"""
    )
    result.published = cur.rowcount


def record_batch(cur: Cursor, result: AuditResult) -> None:
    """One `quality.audit_batch` row; expired ones go (LATAM_QUALITY_HISTORY_DAYS)."""
    cur.execute(
        """INSERT INTO quality.audit_batch (table_name, run_id, audited_rows, published_rows,
               held_rows, reject_pct, blocked, reason, rule_counts, failing_keys, seconds)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
        (
            result.table.published,
            result.run_id,
            result.audited,
            result.published,
            result.held,
            result.reject_pct,
            result.blocked_reason is not None,
            result.blocked_reason,
            json.dumps(result.rule_counts()),
            json.dumps(result.failing_keys),
            round(result.seconds, 4),
        ),
    )
    days = get_quality_settings().history_days
    if days > 0:
        cur.execute(
            "DELETE FROM quality.audit_batch WHERE audited_at < now() - make_interval(secs => %s)",
            (days * 86400,),
        )


def touched_dates_sql(table: AuditedTable) -> str:
    """The flight dates whose published rows the audit changed, for the marts."""
    return f"SELECT flight_date FROM {DATES}"


def rejects_sql(table: AuditedTable, rule: str) -> str:
    """SQL listing the rows a row rule holds back, with what was observed."""
    return (
        "SELECT row_key, flight_date, observed, first_seen, last_seen, run_id\n"
        "FROM quality.rejects\n"
        f"WHERE table_name = {literal(table.published)} AND rule = {literal(rule)}\n"
        "ORDER BY first_seen, row_key"
    )


def held_back_counts(cur: Cursor, table: AuditedTable) -> dict[str, int]:
    """Rows of `table` currently held back, per rule."""
    cur.execute(
        "SELECT rule, count(*) FROM quality.rejects WHERE table_name = %s GROUP BY rule",
        (table.published,),
    )
    return {rule: int(n) for rule, n in cur.fetchall()}
