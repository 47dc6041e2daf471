"""The rows the audit holds back, read from `quality.rejects`.

Kept apart from `latam quality rejects` so that other readers (the report, the API, metrics) can
name tables and rules the same way and read the same columns. Rows come back as plain dicts; text
a source controls (keys, observed values) is left as stored, for whoever prints it to escape.
"""

from __future__ import annotations

from typing import Any

import psycopg2.extras

from latam_dagster.db import connect


class UnknownTable(ValueError):
    """A table name that no audit publishes: it can hold nothing back."""


class UnknownRule(ValueError):
    """A rule that holds back no row of the tables asked about."""


def audited_tables() -> dict[str, list[str]]:
    """Qualified name of every audited table -> the names of its rules that hold rows back."""
    from latam_dagster.tables import REGISTRY

    audited = REGISTRY.audited().values()
    return {t.published: [r.name for r in t.suite.rules if r.holds_back] for t in audited}


def resolve_table(name: str) -> str:
    """`fact_flight` or `curated.fact_flight` -> `curated.fact_flight`; else `UnknownTable`."""
    known = audited_tables()
    qualified = name if "." in name else f"curated.{name}"
    if qualified not in known:
        raise UnknownTable(f"{name!r} is not an audited table; known: {', '.join(sorted(known))}")
    return qualified


def check_rule(url: str, rule: str, table: str | None = None) -> None:
    """Raise `UnknownRule` unless `rule` holds rows back (declared, or still recorded)."""
    known = audited_tables()
    declared = {r for t, rules in known.items() if table in (None, t) for r in rules}
    if rule in declared or rule in {r["rule"] for r in reject_counts(url, table)}:
        return
    raise UnknownRule(
        f"{rule!r} holds back no rows of {table or 'any audited table'}; "
        f"rules that do: {', '.join(sorted(declared))}"
    )


def list_rejects(
    url: str, table: str | None = None, rule: str | None = None, limit: int | None = None
) -> list[dict[str, Any]]:
    """Held-back rows, newest `last_seen` first (then table, key, rule): one per key and rule."""
    sql = """SELECT table_name AS "table", row_key AS key, rule, flight_date, observed, run_id,
                    first_seen, last_seen
             FROM quality.rejects
             WHERE (%(table)s::text IS NULL OR table_name = %(table)s)
               AND (%(rule)s::text IS NULL OR rule = %(rule)s)
             ORDER BY last_seen DESC, table_name, row_key, rule
             LIMIT %(limit)s"""
    conn = connect(url)
    try:
        with conn, conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
            cur.execute(sql, {"table": table, "rule": rule, "limit": limit})
            return [dict(r) for r in cur.fetchall()]
    finally:
        conn.close()


def reject_counts(url: str, table: str | None = None) -> list[dict[str, Any]]:
    """Rows held back per table and rule, with the oldest `first_seen` of each (how long)."""
    conn = connect(url)
    try:
        with conn, conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
            cur.execute(
                """SELECT table_name AS "table", rule, count(*) AS rows,
                          min(first_seen) AS oldest_first_seen, max(last_seen) AS last_seen
                   FROM quality.rejects
                   WHERE %(table)s::text IS NULL OR table_name = %(table)s
                   GROUP BY table_name, rule ORDER BY table_name, rule""",
                {"table": table},
            )
            return [{**r, "rows": int(r["rows"])} for r in cur.fetchall()]
    finally:
        conn.close()
