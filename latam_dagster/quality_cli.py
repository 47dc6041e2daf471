"""`latam quality`: the data-quality report, and validations run by hand outside Dagster.

Registered on the main command with `main.add_command(quality)` in `latam_dagster.cli`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import psycopg2

from latam_dagster.quality.settings import get_quality_settings
from latam_dagster.settings import get_settings


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
    from latam_dagster.quality.report import build_report, render_text

    try:
        data = build_report(get_settings().warehouse_url, get_quality_settings().data_docs_dir)
    except psycopg2.errors.UndefinedTable:
        click.echo("error: the quality tables are missing: run `latam init` first.", err=True)
        sys.exit(2)
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
    from latam_dagster.checks.spec import Scope
    from latam_dagster.checks.suites import all_suites
    from latam_dagster.resources.gx import GreatExpectationsResource

    suites = [s for s in all_suites() if not suite_names or s.name in suite_names]
    unknown = set(suite_names) - {s.name for s in suites}
    if unknown:
        names = ", ".join(s.name for s in all_suites())
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
