"""The audit of every curated micro-batch, reported as asset checks of the curated asset itself.

Each audited table's asset declares one check per rule of its suite plus `reject_share`, and every
materialization carries their evaluations, so the latest materialization always shows the state:
row rules pass or list the rows they hold back (WARN: held-back rows never stop anything), table
rules and the reject share pass or fail with ERROR, and then the run has failed and nothing of the
batch was published. Great Expectations validates the whole published table separately (the
`gx_suite` check, see `asset_checks`).
"""

from __future__ import annotations

from collections.abc import Iterable

from dagster import (
    AssetCheckKey,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    MetadataValue,
)

from latam_dagster.quality.audit import (
    REJECT_SHARE_CHECK,
    AuditedTable,
    AuditResult,
    RuleAudit,
    rejects_sql,
)
from latam_dagster.quality.failing_rows import Relation, failing_rows_sql, literal
from latam_dagster.tables.rules import ROW


def audit_check_specs(table: AuditedTable, asset_key: AssetKey) -> list[AssetCheckSpec]:
    """One spec per rule, plus the reject share; only table rules and the share block."""
    specs = [
        AssetCheckSpec(
            rule.name,
            asset=asset_key,
            description=rule.description,
            blocking=rule.blocking and rule.level != ROW,
            metadata={"level": rule.level, "engine": "audit", "suite": table.suite.name},
        )
        for rule in table.suite.rules
    ]
    specs.append(
        AssetCheckSpec(
            REJECT_SHARE_CHECK,
            asset=asset_key,
            description=(
                "The share of a micro-batch's rows held back by row rules stays at or below "
                "LATAM_QUALITY_REJECT_MAX_PCT; above it the batch is not published."
            ),
            blocking=True,
            metadata={"level": "table", "engine": "audit"},
        )
    )
    return specs


def audit_check_keys(tables: Iterable[tuple[AuditedTable, AssetKey]]) -> set[AssetCheckKey]:
    """Every check the audits evaluate: a run materializing the asset must select them."""
    return {spec.key for table, asset_key in tables for spec in audit_check_specs(table, asset_key)}


def _rule_sql(table: AuditedTable, audit: RuleAudit) -> str:
    """SQL that lists the rows behind a failing rule: the held-back rows for a rule that holds
    rows back, the published rows for a warning, the stored rows for a table rule."""
    if audit.rule.holds_back:
        return rejects_sql(table, audit.rule.name)
    where = table.staging if audit.rule.level != ROW else table.published
    statements = [
        failing_rows_sql(e, Relation(where), (table.key,), "TRUE")
        for e, n in zip(audit.rule.expectations, audit.expectation_failures, strict=True)
        if n or audit.passed
    ]
    return ";\n\n".join(s for s in statements if s)


def _rule_result(
    asset_key: AssetKey, result: AuditResult, audit: RuleAudit, held_now: int | None
) -> AssetCheckResult:
    rule = audit.rule
    table_rule = rule.level != ROW and rule.blocking
    if audit.passed:
        description = f"{result.audited} row(s) audited, none failing"
    elif rule.holds_back:
        description = f"{audit.failing_rows} of {result.audited} row(s) held back"
    elif table_rule:
        description = f"{audit.failing_rows} row(s) break it: the batch was not published"
    else:
        description = f"{audit.failing_rows} of {result.audited} row(s) fail it (published)"
    md: dict[str, object] = {
        "table": result.table.published,
        "level": rule.level,
        "audited_rows": result.audited,
        "failing_rows": audit.failing_rows,
        "expectations_evaluated": len(audit.expectation_failures),
        "expectations_failed": sum(1 for n in audit.expectation_failures if n),
        "failing_rows_by_expectation": MetadataValue.json(
            {
                e.label(): n
                for e, n in zip(rule.expectations, audit.expectation_failures, strict=True)
            }
        ),
    }
    if held_now is not None and rule.holds_back:
        md["held_back_in_table"] = held_now
    keys = result.failing_keys.get(rule.name)
    if keys:
        md["failing_keys"] = MetadataValue.json(keys)
    if result.blocked_reason is not None and not audit.passed:
        # rolled back: the batch's rows are nowhere; the refused batch's record keeps their keys
        md["failing_keys_sql"] = MetadataValue.md(
            "```sql\nSELECT audited_at, reason, failing_keys -> "
            f"{literal(rule.name)} AS keys\nFROM quality.audit_batch\n"
            f"WHERE table_name = {literal(result.table.published)} AND blocked\n"
            "ORDER BY audited_at DESC LIMIT 1\n```"
        )
    if (not audit.passed and (table_rule or result.blocked_reason is None)) or (held_now or 0):
        # for a refused table rule, the stored rows its batch collided with
        md["failing_rows_sql"] = MetadataValue.md(f"```sql\n{_rule_sql(result.table, audit)}\n```")
    return AssetCheckResult(
        asset_key=asset_key,
        check_name=rule.name,
        passed=audit.passed,
        severity=AssetCheckSeverity.ERROR if table_rule else AssetCheckSeverity.WARN,
        description=description,
        metadata=md,
    )


def audit_check_results(
    asset_key: AssetKey,
    result: AuditResult,
    selected: set[AssetCheckKey],
    held_now: dict[str, int] | None = None,
) -> list[AssetCheckResult]:
    """The evaluations of the selected audit checks for one audited batch."""
    held_now = held_now or {}
    out = [
        _rule_result(asset_key, result, audit, held_now.get(audit.rule.name, 0))
        for audit in result.rules
    ]
    share_ok = not result.share_exceeded
    out.append(
        AssetCheckResult(
            asset_key=asset_key,
            check_name=REJECT_SHARE_CHECK,
            passed=share_ok,
            severity=AssetCheckSeverity.ERROR,
            description=(
                f"{result.held} of {result.audited} row(s) held back ({result.reject_pct:g}%), "
                f"limit {result.max_pct:g}% (from {result.min_rows} rows)"
            ),
            metadata={
                "audited_rows": result.audited,
                "held_back_rows": result.held,
                "reject_pct": MetadataValue.float(result.reject_pct),
                "max_pct": MetadataValue.float(result.max_pct),
                "min_rows": result.min_rows,
                "blocked": result.blocked_reason is not None,
            },
        )
    )
    return [r for r in out if AssetCheckKey(asset_key, r.check_name) in selected]


def all_audit_check_keys() -> set[AssetCheckKey]:
    """The audit checks of every audited curated table."""
    from latam_dagster.tables import REGISTRY

    audited = REGISTRY.audited()
    return audit_check_keys((t, AssetKey(["curated", name])) for name, t in audited.items())
