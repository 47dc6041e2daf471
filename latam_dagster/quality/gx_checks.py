"""Dagster asset checks built from the suites: one multi-asset check per table, one check per rule.

A table's rules are validated together in one GX pass (one set of queries per table), then
reported as separate checks so the UI shows which rule failed. The curated tables published by the
audit are the exception: their per-rule checks belong to the asset (every materialization
evaluates them, see `audit_checks`), and Great Expectations reports its validation of the whole
published table as one check, `gx_suite`, with the verdict of every rule in its metadata. Blocking rules fail with ERROR
severity: Dagster then fails the check step and skips every asset downstream of the table in the
same run, so bad curated rows never reach the marts (which keep their last good data). The other
rules warn. Each check can also be run on its own from the UI (the check subsets its suite).

Mart checks follow the run's partitions: a run over 2026-11-01..2026-11-27 validates those dates;
a check run without partitions validates the whole mart.
"""

from collections.abc import Iterator
from datetime import date

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckKey,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    AssetSelection,
    MetadataValue,
    multi_asset_check,
)

from latam_dagster.quality.gx_resource import GreatExpectationsResource
from latam_dagster.quality.outcome import RuleOutcome, SuiteOutcome
from latam_dagster.resources.warehouse import WarehouseResource
from latam_dagster.tables import REGISTRY, Registry
from latam_dagster.tables.rules import Scope, TableSuite

GX_RESOURCE_KEY = "gx"
GX_SUITE_CHECK = "gx_suite"
"""The one GX check of an audited table: the whole published table against its suite."""
PARTITION_TAG = "dagster/partition"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def run_scope(tags: dict[str, str], suite: TableSuite) -> Scope:
    """The dates a run covers (from its partition tags), for suites validated by date."""
    if not suite.date_column:
        return Scope()
    try:
        if tags.get(PARTITION_TAG):
            day = date.fromisoformat(tags[PARTITION_TAG])
            return Scope(day, day)
        if tags.get(RANGE_START_TAG) and tags.get(RANGE_END_TAG):
            return Scope(
                date.fromisoformat(tags[RANGE_START_TAG]), date.fromisoformat(tags[RANGE_END_TAG])
            )
    except ValueError:
        pass  # not a daily partition key: validate the whole table
    return Scope()


def check_metadata(outcome: SuiteOutcome, rule: RuleOutcome) -> dict[str, object]:
    """What the UI shows for one check evaluation."""
    stats = rule.statistics()
    md: dict[str, object] = {
        "table": outcome.suite.table,
        "partition": outcome.scope.label or "whole table",
        "expectations_evaluated": stats["expectations_evaluated"],
        "expectations_failed": stats["expectations_failed"],
        "unexpected_count": stats["unexpected_count"],
        "observed_values": MetadataValue.json(stats["expectations"]),
        "validation_id": str(outcome.validation_id),
        "validation_seconds": MetadataValue.float(round(outcome.seconds, 3)),
    }
    if stats["element_count"] is not None:
        md["element_count"] = stats["element_count"]
    if stats["unexpected_percent"] is not None:
        md["unexpected_percent"] = MetadataValue.float(stats["unexpected_percent"])
    sample = rule.sample(outcome.sample_size)
    if sample:
        md["failing_sample"] = MetadataValue.json(sample)
    sql = rule.failing_row_sql()
    if sql and not rule.success:
        md["failing_rows_sql"] = MetadataValue.md(f"```sql\n{sql}\n```")
    errors = [f"{e.label}: {e.error}" for e in rule.expectations if e.error]
    if errors:
        md["errors"] = MetadataValue.text("\n".join(errors))
    if outcome.data_docs_page:
        md["data_docs_page"] = outcome.data_docs_page
    return md


def describe(rule: RuleOutcome) -> str:
    if rule.success:
        return f"{len(rule.expectations)} expectation(s) met"
    return (
        f"{len(rule.failed)} of {len(rule.expectations)} expectation(s) failed, "
        f"{rule.unexpected_count} failing row(s): " + ", ".join(e.label for e in rule.failed)
    )


def _rule_summary(rule: RuleOutcome) -> dict[str, object]:
    return {
        "passed": rule.success,
        "blocking": rule.rule.blocking,
        "level": rule.rule.level,
        "unexpected_count": rule.unexpected_count,
        "failed": [e.label for e in rule.failed],
    }


def suite_result(asset_key: AssetKey, outcome: SuiteOutcome) -> AssetCheckResult:
    """The `gx_suite` evaluation: failed with ERROR if a blocking rule failed, WARN otherwise."""
    failed = [r for r in outcome.rules if not r.success]
    blocking = [r for r in failed if r.rule.blocking]
    md: dict[str, object] = {
        "table": outcome.suite.table,
        "rules": MetadataValue.json({r.rule.name: _rule_summary(r) for r in outcome.rules}),
        "validation_id": str(outcome.validation_id),
        "validation_seconds": MetadataValue.float(round(outcome.seconds, 3)),
    }
    sql = [r.failing_row_sql() for r in failed]
    if any(sql):
        md["failing_rows_sql"] = MetadataValue.md(
            "```sql\n" + ";\n\n".join(s for s in sql if s) + "\n```"
        )
    if outcome.data_docs_page:
        md["data_docs_page"] = outcome.data_docs_page
    return AssetCheckResult(
        asset_key=asset_key,
        check_name=GX_SUITE_CHECK,
        passed=not failed,
        severity=AssetCheckSeverity.ERROR if blocking else AssetCheckSeverity.WARN,
        description=(
            f"{len(outcome.rules) - len(failed)}/{len(outcome.rules)} rule(s) hold on the whole "
            "table" + (": " + ", ".join(r.rule.name for r in failed) + " failed" if failed else "")
        ),
        metadata=md,
    )


def build_suite_checks(suite: TableSuite, summary: bool = False) -> AssetChecksDefinition:
    """The multi-asset check validating `suite`: one AssetCheckSpec per rule, or with `summary`
    one `gx_suite` spec for the whole suite (tables whose rules the audit evaluates)."""
    asset_key = AssetKey(list(suite.asset_key))
    deps = [AssetKey(list(k)) for k in suite.reference_assets]
    if summary:
        specs = [
            AssetCheckSpec(
                GX_SUITE_CHECK,
                asset=asset_key,
                description=(
                    f"Great Expectations suite `{suite.name}` on the whole published table: every "
                    "rule the audit applies to each batch, plus the ones only a whole table shows."
                ),
                blocking=True,
                additional_deps=deps,
                metadata={"suite": suite.name, "engine": "great_expectations"},
            )
        ]
    else:
        specs = [
            AssetCheckSpec(
                rule.name,
                asset=asset_key,
                description=rule.description,
                blocking=rule.blocking,
                additional_deps=deps,
                metadata={"severity": rule.severity, "suite": suite.name},
            )
            for rule in suite.rules
        ]

    @multi_asset_check(
        specs=specs,
        name="quality_" + suite.name.replace(".", "_"),
        can_subset=not summary,
        description=f"Great Expectations suite `{suite.name}`, validated in Postgres.",
    )
    def _checks(
        context: AssetCheckExecutionContext,
        gx: GreatExpectationsResource,
        warehouse: WarehouseResource,
    ) -> Iterator[AssetCheckResult]:
        # the summary check validates every rule of the suite (None); the others, those selected
        selected: list[str] | None = (
            None
            if summary
            else [k.name for k in context.selected_asset_check_keys if k.asset_key == asset_key]
        )
        scope = run_scope(dict(context.run.tags), suite)
        # the database the run's assets wrote, unless the GX resource names another one
        outcome = gx.validate(
            suite,
            scope,
            selected,
            run_id=context.run.run_id,
            warehouse_url=gx.warehouse_url or warehouse.url,
        )
        context.log.info(
            f"{suite.name} ({scope.label or 'whole table'}): "
            f"{sum(r.success for r in outcome.rules)}/{len(outcome.rules)} check(s) passed "
            f"in {outcome.seconds:.2f}s"
        )
        if summary:
            yield suite_result(asset_key, outcome)
            return
        for rule in outcome.rules:
            yield AssetCheckResult(
                asset_key=asset_key,
                check_name=rule.rule.name,
                passed=rule.success,
                severity=AssetCheckSeverity.ERROR
                if rule.rule.blocking
                else AssetCheckSeverity.WARN,
                description=describe(rule),
                metadata=check_metadata(outcome, rule),
            )

    return _checks


def mart_input_checks() -> AssetSelection:
    """The checks of the curated tables the marts read, to run at the start of every mart run.

    Marts refresh in runs of their own (sensor, schedule, backfill), not in the micro-batch that
    changed the curated tables. Selecting these checks into the marts job re-validates the inputs
    first; if a blocking one fails, no mart partition is refreshed in that run, the marts keep
    their last good data and the dates stay pending until the data is fixed.
    """
    inputs = [t for t in REGISTRY.curated() if t.feeds_marts and t.audited]
    return AssetSelection.checks(
        *(AssetCheckKey(AssetKey(list(t.asset_key)), GX_SUITE_CHECK) for t in inputs)
    )


def build_asset_checks(registry: Registry = REGISTRY) -> list[AssetChecksDefinition]:
    """Checks for every suite: raw quarantine rates, reference, curated tables and marts.

    The rules of audited tables are their assets' own checks; Great Expectations validates such
    a whole table as one summary check.
    """
    audited = {t.suite.name for t in registry.audited().values()}
    return [build_suite_checks(s, summary=s.name in audited) for s in registry.suites()]


asset_checks: list[AssetChecksDefinition] = build_asset_checks()
