"""Dagster asset checks built from the suites: one multi-asset check per table, one check per rule.

A table's rules are validated together in one GX pass (one set of queries per table), then
reported as separate checks so the UI shows which rule failed. Blocking rules fail with ERROR
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
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    AssetSelection,
    MetadataValue,
    multi_asset_check,
)

from latam_dagster.checks.spec import Scope, TableSuite
from latam_dagster.checks.suites import FACT_FLIGHT, PASSENGER_LOAD, all_suites
from latam_dagster.quality.outcome import RuleOutcome, SuiteOutcome
from latam_dagster.resources.gx import GreatExpectationsResource
from latam_dagster.resources.warehouse import WarehouseResource

GX_RESOURCE_KEY = "gx"
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


def build_suite_checks(suite: TableSuite) -> AssetChecksDefinition:
    """The multi-asset check validating `suite`, one AssetCheckSpec per rule."""
    asset_key = AssetKey(list(suite.asset_key))
    deps = [AssetKey(list(k)) for k in suite.reference_assets]
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
        can_subset=True,
        description=f"Great Expectations suite `{suite.name}`, validated in Postgres.",
    )
    def _checks(
        context: AssetCheckExecutionContext,
        gx: GreatExpectationsResource,
        warehouse: WarehouseResource,
    ) -> Iterator[AssetCheckResult]:
        selected = [k.name for k in context.selected_asset_check_keys if k.asset_key == asset_key]
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
    return AssetSelection.checks_for_assets(
        *(AssetKey(list(k)) for k in (FACT_FLIGHT, PASSENGER_LOAD))
    )


def build_asset_checks() -> list[AssetChecksDefinition]:
    """Checks for every suite: raw quarantine rates, reference, curated tables and marts."""
    return [build_suite_checks(s) for s in all_suites()]


asset_checks: list[AssetChecksDefinition] = build_asset_checks()
