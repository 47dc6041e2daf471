"""The validation history in `quality.*`: written after every validation, read by the reports.

One `quality.validation` row per suite validation and one `quality.check_evaluation` row per
check (rule) in it, in a single transaction, so the history never holds half a validation.
`quality.latest_check_result` (the newest evaluation of each check) follows in that same
transaction, through the triggers of migration 0034: a newer evaluation replaces a check's row,
an older one recorded late does not, and when retention deletes a check's latest evaluation the
row becomes the newest one kept (none when every one expired).
"""

from __future__ import annotations

import json
from typing import Any

from psycopg2.extras import execute_values

from latam_dagster.db import connection
from latam_dagster.quality.outcome import SuiteOutcome

_CHECK_COLUMNS = (
    "validation_id",
    "check_name",
    "asset_key",
    "table_name",
    "partition_key",
    "run_id",
    "evaluated_at",
    "success",
    "severity",
    "blocking",
    "description",
    "expectations_evaluated",
    "expectations_failed",
    "element_count",
    "unexpected_count",
    "unexpected_percent",
    "statistics",
    "failing_sample",
    "unexpected_index_query",
)


def record(url: str, outcome: SuiteOutcome, keep_days: float = 0) -> None:
    """Store one validation and its check evaluations; drop those older than `keep_days`."""
    suite = outcome.suite
    common = {
        "validation_id": str(outcome.validation_id),
        "asset_key": suite.asset_key_str,
        "partition_key": outcome.scope.label,
        "run_id": outcome.run_id,
        "evaluated_at": outcome.evaluated_at,
    }
    rows = []
    for r in outcome.rules:
        stats = r.statistics()
        values = {
            **common,
            "check_name": r.rule.name,
            "table_name": suite.table,
            "success": r.success,
            "severity": r.rule.severity,
            "blocking": r.rule.blocking,
            "description": r.rule.description,
            "expectations_evaluated": stats["expectations_evaluated"],
            "expectations_failed": stats["expectations_failed"],
            "element_count": stats["element_count"],
            "unexpected_count": stats["unexpected_count"],
            "unexpected_percent": stats["unexpected_percent"],
            "statistics": json.dumps(stats),
            "failing_sample": json.dumps(r.sample(outcome.sample_size)),
            "unexpected_index_query": r.failing_row_sql() if not r.success else None,
        }
        rows.append(tuple(values[c] for c in _CHECK_COLUMNS))
    with connection(url) as conn, conn.cursor() as cur:
        cur.execute(
            """INSERT INTO quality.validation (validation_id, suite_name, asset_key, partition_key,
                   run_id, evaluated_at, success, checks_evaluated, checks_failed, duration_ms,
                   data_docs_page)
               VALUES (%(validation_id)s, %(suite_name)s, %(asset_key)s, %(partition_key)s,
                   %(run_id)s, %(evaluated_at)s, %(success)s, %(checks_evaluated)s,
                   %(checks_failed)s, %(duration_ms)s, %(data_docs_page)s)""",
            {
                **common,
                "suite_name": suite.name,
                "success": outcome.success,
                "checks_evaluated": len(outcome.rules),
                "checks_failed": sum(1 for r in outcome.rules if not r.success),
                "duration_ms": int(outcome.seconds * 1000),
                "data_docs_page": outcome.data_docs_page,
            },
        )
        if rows:
            execute_values(
                cur,
                f"INSERT INTO quality.check_evaluation ({', '.join(_CHECK_COLUMNS)}) VALUES %s",
                rows,
                template="(" + ", ".join(["%s"] * len(_CHECK_COLUMNS)) + ")",
            )
        if keep_days > 0:
            cur.execute(
                """DELETE FROM quality.validation
                   WHERE evaluated_at < now() - make_interval(secs => %s)""",
                (keep_days * 86400,),
            )


_REPORT_COLUMNS = """e.check_name, e.asset_key, e.table_name, e.partition_key, e.run_id,
    e.evaluated_at, e.success, e.severity, e.blocking, e.description, e.expectations_evaluated,
    e.expectations_failed, e.element_count, e.unexpected_count, e.unexpected_percent,
    e.statistics, e.failing_sample, e.unexpected_index_query, v.data_docs_page"""


def latest_results(url: str) -> list[dict[str, Any]]:
    """The latest evaluation of every check, failing blocking checks first."""
    return _fetch(
        url,
        f"""SELECT {_REPORT_COLUMNS}
            FROM quality.latest_check_result AS e
            JOIN quality.validation AS v USING (validation_id)
            ORDER BY e.success, e.blocking AND NOT e.success DESC, e.asset_key, e.check_name""",
    )


def check_history(
    url: str, check_name: str | None = None, asset_key: str | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    """Evaluations, newest first, optionally of one check and/or one asset."""
    return _fetch(
        url,
        f"""SELECT {_REPORT_COLUMNS}
            FROM quality.check_evaluation AS e
            JOIN quality.validation AS v USING (validation_id)
            WHERE (%(check)s::text IS NULL OR e.check_name = %(check)s)
              AND (%(asset)s::text IS NULL OR e.asset_key = %(asset)s)
            ORDER BY e.evaluated_at DESC, e.evaluation_id DESC
            LIMIT %(limit)s""",
        {"check": check_name, "asset": asset_key, "limit": limit},
    )


def _fetch(url: str, sql: str, params: dict | None = None) -> list[dict[str, Any]]:
    with connection(url) as conn, conn.cursor() as cur:
        cur.execute(sql, params or {})
        names = [d.name for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
