"""`latam quality`: the data-quality report, held-back rows, and validations run by hand.

Registered on the main command with `main.add_command(quality)` in `latam_dagster.cli`.
"""

from __future__ import annotations

import json
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Any, NoReturn

import click
import psycopg2

from latam_dagster.settings import get_quality_settings, get_settings


@click.group()
def quality() -> None:
    """Data-quality results: latest check results, validations, Data Docs."""


@quality.command()
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option(
    "--strict", is_flag=True, help="Exit with status 1 when a blocking check's latest run failed."
)
def report(as_json: bool, strict: bool) -> None:
    """Summary of the latest result of every check, failures first, with their failing rows."""
    from latam_dagster.cli.quality_report import build_report, render_text

    try:
        data = build_report(get_settings().warehouse_url, get_quality_settings().data_docs_dir)
    except psycopg2.errors.UndefinedTable:
        _missing_tables()
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        click.echo(render_text(data))
    if strict and data["summary"]["blocking_failed"]:
        sys.exit(1)


@quality.command()
@click.option("--suite", "suite_names", multiple=True, help="Only this suite (repeatable).")
@click.option(
    "--partition",
    default=None,
    help="Dates of the mart suites: YYYY-MM-DD or START...END (default: whole tables).",
)
def validate(suite_names: tuple[str, ...], partition: str | None) -> None:
    """Validate suites now (as the Dagster checks would), record them and refresh Data Docs."""
    from latam_dagster.cli import refuse_default_secrets

    refuse_default_secrets("warehouse_url")
    from latam_dagster.quality.gx_resource import GreatExpectationsResource
    from latam_dagster.tables import REGISTRY
    from latam_dagster.tables.rules import Scope

    suites = [s for s in REGISTRY.suites() if not suite_names or s.name in suite_names]
    unknown = set(suite_names) - {s.name for s in suites}
    if unknown:
        names = ", ".join(s.name for s in REGISTRY.suites())
        raise click.BadParameter(f"unknown suite(s) {sorted(unknown)}; known: {names}")
    scope = Scope.parse(partition)
    gx = GreatExpectationsResource()
    blocking_failed = 0
    for suite in suites:
        outcome = gx.validate(suite, scope if suite.date_column else Scope())
        for r in outcome.rules:
            status = "ok" if r.success else ("FAIL" if r.rule.blocking else "warn")
            blocking_failed += not r.success and r.rule.blocking
            click.echo(f"{status:4}  {suite.asset_key_str}  {r.rule.name}  {r.unexpected_count}")
    click.echo(f"Data Docs: {Path(gx.data_docs_dir) / 'index.html'}")
    sys.exit(1 if blocking_failed else 0)


def _missing_tables() -> NoReturn:
    click.echo("error: the quality tables are missing: run `latam init` first.", err=True)
    sys.exit(2)


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


def _shown_time(value: datetime) -> str:
    """To the second, in the database session's time zone, as `quarantine list` shows times."""
    return value.strftime("%Y-%m-%d %H:%M:%S")


def _rejects_table(rows: list[dict[str, Any]]) -> str:
    """The rows as aligned columns; source-controlled text escaped so a terminal shows it as is."""
    from latam_dagster.ingest.safe_text import safe_text

    header = ("TABLE", "KEY", "RULE", "FLIGHT_DATE", "FIRST_SEEN", "LAST_SEEN", "OBSERVED")
    lines = [header]
    for r in rows:
        observed = json.dumps(r["observed"], separators=(",", ":"), default=str)
        lines.append(
            (
                r["table"],
                safe_text(r["key"], 80) or "",
                r["rule"],
                r["flight_date"].isoformat() if r["flight_date"] else "-",
                _shown_time(r["first_seen"]),
                _shown_time(r["last_seen"]),
                safe_text(observed, 120) or "",
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
    return "\n".join(
        "  ".join([*(c.ljust(w) for c, w in zip(line, widths, strict=False)), line[-1]])
        for line in lines
    )


@quality.command()
@click.option("--table", default=None, help="Only this audited table (fact_flight, ...).")
@click.option("--rule", default=None, help="Only the rows this rule holds back.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 100000))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of objects.")
def rejects(table: str | None, rule: str | None, limit: int, as_json: bool) -> None:
    """Rows the audit holds back from the curated tables, newest last_seen first.

    A held-back row waits in quality.rejects until a later event or reference data makes it
    pass its rules; the marts and the API never see it meanwhile.
    """
    from latam_dagster.quality.rejects import (
        UnknownRule,
        UnknownTable,
        check_rule,
        list_rejects,
        reject_counts,
        resolve_table,
    )

    url = get_settings().warehouse_url
    try:
        qualified = resolve_table(table) if table is not None else None
    except UnknownTable as exc:
        raise click.BadParameter(str(exc), param_hint="'--table'") from None
    try:
        if rule is not None:
            check_rule(url, rule, qualified)
        rows = list_rejects(url, qualified, rule, limit)
        total = sum(c["rows"] for c in reject_counts(url, qualified) if rule in (None, c["rule"]))
    except UnknownRule as exc:
        raise click.BadParameter(str(exc), param_hint="'--rule'") from None
    except psycopg2.errors.UndefinedTable:
        _missing_tables()
    if as_json:
        click.echo(json.dumps([{k: _iso(v) for k, v in r.items()} for r in rows], indent=2))
        return
    if not rows:
        click.echo("no rows held back")
        return
    click.echo(_rejects_table(rows))
    shown = f"{len(rows)} of {total}" if total > len(rows) else str(total)
    more = " (newest first; raise --limit to see more)" if total > len(rows) else ""
    click.echo(f"{shown} row(s) held back{more}")
