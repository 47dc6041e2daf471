"""The data-quality report: the latest result of every check, as JSON-ready data or as text.

Read from `quality.*` only, so it works without GX and shows what the last runs found, wherever
they ran. Failing blocking checks come first, then warnings, then the checks that passed. Above
them, the flight dates that wait outside the mart partitions (read from `curated` and `marts`),
since no check and no run ever covers those, and the rows the audit of the curated micro-batches
holds back, per table and rule.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from latam_dagster.db import connection
from latam_dagster.quality import history
from latam_dagster.quality.outcome import jsonable
from latam_dagster.quality.rejects import reject_counts
from latam_dagster.settings import get_settings
from latam_dagster.transform.marts import dates_outside, partition_bounds_for, pending_dates_at

SAMPLE_ROWS = 5


def build_report(
    url: str, data_docs_dir: str | None = None, partition_start: str | None = None
) -> dict[str, Any]:
    """Summary counts and the latest evaluation of each check, and the pending flight dates that
    no mart partition covers (`partition_start` defaults to LATAM_PARTITION_START)."""
    rows = history.latest_results(url)
    checks = [_check(r) for r in rows]
    failed = [c for c in checks if not c["success"]]
    report: dict[str, Any] = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "summary": {
            "checks": len(checks),
            "passed": len(checks) - len(failed),
            "failed": len(failed),
            "blocking_failed": sum(1 for c in failed if c["blocking"]),
            "warnings": sum(1 for c in failed if not c["blocking"]),
        },
        "checks": checks,
        "marts_outside_partitions": _outside_partitions(url, partition_start),
        "held_back": held_back(url),
    }
    if data_docs_dir:
        index = Path(data_docs_dir) / "index.html"
        report["data_docs_index"] = str(index) if index.exists() else None
    return report


def held_back(url: str) -> dict[str, Any]:
    """Rows the audit holds back per table and rule, and its batches of the last 24 hours."""
    by_rule = [
        {
            "table": r["table"],
            "rule": r["rule"],
            "rows": r["rows"],
            "oldest_first_seen": jsonable(r["oldest_first_seen"]),
        }
        for r in reject_counts(url)
    ]
    with connection(url) as conn, conn.cursor() as cur:
        cur.execute(
            """SELECT table_name, count(*), coalesce(sum(audited_rows), 0),
                      coalesce(sum(held_rows), 0), count(*) FILTER (WHERE blocked),
                      (array_agg(reason ORDER BY audited_at DESC) FILTER (WHERE blocked))[1]
               FROM quality.audit_batch WHERE audited_at >= now() - interval '24 hours'
               GROUP BY 1 ORDER BY 1"""
        )
        batches = [
            {
                "table": t,
                "batches": int(b),
                "rows_audited": int(a),
                "rows_held": int(h),
                "reject_pct": round(100.0 * int(h) / int(a), 3) if a else 0.0,
                "blocked": int(k),
                "last_blocked_reason": reason,
            }
            for t, b, a, h, k, reason in cur.fetchall()
        ]
    return {"rows": sum(r["rows"] for r in by_rule), "by_rule": by_rule, "batches_24h": batches}


def _outside_partitions(url: str, partition_start: str | None) -> dict[str, Any]:
    """Pending dates outside the mart partitions: nothing refreshes them, so the report says so."""
    bounds = partition_bounds_for(partition_start or get_settings().partition_start)
    return dates_outside(pending_dates_at(url), *bounds).as_dict()


def _check(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "check": row["check_name"],
        "asset_key": row["asset_key"],
        "table": row["table_name"],
        "partition": row["partition_key"],
        "success": row["success"],
        "severity": row["severity"],
        "blocking": row["blocking"],
        "description": row["description"],
        "evaluated_at": jsonable(row["evaluated_at"]),
        "run_id": row["run_id"],
        "expectations_evaluated": row["expectations_evaluated"],
        "expectations_failed": row["expectations_failed"],
        "element_count": row["element_count"],
        "unexpected_count": row["unexpected_count"],
        "unexpected_percent": row["unexpected_percent"],
        "failing_sample": (row["failing_sample"] or [])[:SAMPLE_ROWS],
        "unexpected_index_query": row["unexpected_index_query"],
        "data_docs_page": row["data_docs_page"],
        "expectations": [
            e for e in (row["statistics"] or {}).get("expectations", []) if not e.get("success")
        ],
    }


def _held_back_lines(held: dict[str, Any]) -> list[str]:
    """Held-back rows per table and rule, and any batch the audit refused."""
    lines = [
        "",
        f"Held back by the audit: {held.get('rows', 0)} row(s)"
        + ("  (`latam quality rejects` lists them)" if held.get("rows") else ""),
    ]
    for r in held.get("by_rule", []):
        lines.append(f"  {r['table']}  {r['rule']}  {r['rows']}  since {r['oldest_first_seen']}")
    for b in held.get("batches_24h", []):
        line = (
            f"  last 24 h, {b['table']}: {b['batches']} batch(es), {b['rows_held']} of "
            f"{b['rows_audited']} row(s) held back ({b['reject_pct']:g}%)"
        )
        if b["blocked"]:
            line += f", {b['blocked']} REFUSED: {b['last_blocked_reason']}"
        lines.append(line)
    return lines


def _status(check: dict[str, Any]) -> str:
    if check["success"]:
        return "ok"
    return "FAIL" if check["blocking"] else "warn"


def _failing(check: dict[str, Any]) -> str:
    count = check["unexpected_count"] or 0
    if check["success"] and not count:
        return "-"
    pct = check["unexpected_percent"]
    return f"{count} ({pct:.2f}%)" if pct is not None else str(count)


def render_text(report: dict[str, Any]) -> str:
    """A terminal-width table of every check, then the details of the failing ones."""
    s = report["summary"]
    lines = [
        f"Data quality: {s['checks']} check(s), {s['passed']} passed, "
        f"{s['blocking_failed']} blocking failure(s), {s['warnings']} warning(s)"
        f"  [{report['generated_at']}]",
    ]
    outside = (report.get("marts_outside_partitions") or {}).get("messages") or []
    if outside:
        lines += ["", *(f"Marts: {m}" for m in outside)]
    if "held_back" in report:
        lines += _held_back_lines(report["held_back"])
    if not report["checks"]:
        lines.append("No validation recorded yet: run the pipeline (or `latam quality validate`).")
        return "\n".join(lines)
    header = ("STATUS", "ASSET", "CHECK", "PARTITION", "FAILING ROWS", "EVALUATED (UTC)")
    table = [
        (
            _status(c),
            c["asset_key"],
            c["check"],
            c["partition"] or "-",
            _failing(c),
            c["evaluated_at"][:19].replace("T", " "),
        )
        for c in report["checks"]
    ]
    widths = [max(len(str(row[i])) for row in [header, *table]) for i in range(len(header))]
    lines.append("")
    for row in [header, *table]:
        lines.append("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    for c in report["checks"]:
        if c["success"]:
            continue
        lines += ["", f"{_status(c)} {c['asset_key']} {c['check']}: {c['description']}"]
        for e in c["expectations"]:
            detail = e.get("error") or ", ".join(
                f"{k}={e[k]}" for k in ("unexpected_count", "observed_value") if k in e
            )
            lines.append(f"  - {e['expectation']}: {detail}")
        for row in c["failing_sample"]:
            values = ", ".join(f"{k}={v}" for k, v in row.items() if k != "expectation")
            lines.append(f"    row: {values}  [{row.get('expectation', '')}]")
        if c["unexpected_index_query"]:
            lines.append("  every failing row:")
            lines += [f"    {q}" for q in c["unexpected_index_query"].splitlines()]
        if c["data_docs_page"]:
            lines.append(f"  Data Docs: {c['data_docs_page']}")
    if report.get("data_docs_index"):
        lines += ["", f"Data Docs: {report['data_docs_index']}"]
    return "\n".join(lines)
