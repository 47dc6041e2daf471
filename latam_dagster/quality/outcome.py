"""What a validation found, in plain data: per expectation, per rule (Dagster check), per suite.

These objects are built from GX results by the engine and read by the Dagster checks (metadata),
the history store (`quality.*` rows) and the reports, none of which need GX.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from latam_dagster.tables.rules import Rule, Scope, TableSuite

OBSERVED_KEYS = (
    "element_count",
    "unexpected_count",
    "unexpected_percent",
    "missing_count",
    "observed_value",
)


@dataclass
class ExpectationOutcome:
    """One expectation's verdict, the values it observed, and the rows that broke it."""

    rule: str
    label: str
    kind: str
    kwargs: dict[str, Any]
    success: bool
    observed: dict[str, Any] = field(default_factory=dict)
    sample: list[dict[str, Any]] = field(default_factory=list)
    unexpected_index_query: str | None = None
    error: str | None = None

    @property
    def unexpected_count(self) -> int:
        """Failing rows (for a query expectation, the rows its query returned)."""
        if self.observed.get("unexpected_count") is not None:
            return int(self.observed["unexpected_count"])
        value = self.observed.get("observed_value")
        if self.kind == "UnexpectedRowsExpectation" and isinstance(value, int | float):
            return int(value)
        return 0

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "expectation": self.label,
            "success": self.success,
            **{k: v for k, v in self.observed.items() if v is not None},
        }
        if self.error:
            out["error"] = self.error
        return out


@dataclass
class RuleOutcome:
    """One Dagster check's result: the rule's expectations taken together."""

    rule: Rule
    expectations: list[ExpectationOutcome]

    @property
    def success(self) -> bool:
        return all(e.success for e in self.expectations)

    @property
    def failed(self) -> list[ExpectationOutcome]:
        return [e for e in self.expectations if not e.success]

    @property
    def element_count(self) -> int | None:
        counts = [e.observed.get("element_count") for e in self.expectations]
        known = [int(c) for c in counts if c is not None]
        return max(known) if known else None

    @property
    def unexpected_count(self) -> int:
        return sum(e.unexpected_count for e in self.expectations)

    @property
    def unexpected_percent(self) -> float | None:
        """Worst share of failing rows among the rule's expectations, in percent."""
        shares = [
            float(e.observed["unexpected_percent"])
            for e in self.expectations
            if e.observed.get("unexpected_percent") is not None
        ]
        return round(max(shares), 6) if shares else None

    def sample(self, limit: int) -> list[dict[str, Any]]:
        """Failing rows of the failed expectations, each tagged with the expectation it broke."""
        rows: list[dict[str, Any]] = []
        for e in self.failed:
            rows.extend({"expectation": e.label, **row} for row in e.sample)
        return rows[:limit]

    def failing_row_sql(self) -> str | None:
        """SQL returning every failing row: one statement per failed expectation (all, if none)."""
        chosen = self.failed or self.expectations
        parts = [
            f"-- {e.label}\n{e.unexpected_index_query.strip().rstrip(';')};"
            for e in chosen
            if e.unexpected_index_query
        ]
        return "\n\n".join(parts) or None

    def statistics(self) -> dict[str, Any]:
        return {
            "expectations_evaluated": len(self.expectations),
            "expectations_failed": len(self.failed),
            "element_count": self.element_count,
            "unexpected_count": self.unexpected_count,
            "unexpected_percent": self.unexpected_percent,
            "expectations": [e.as_json() for e in self.expectations],
        }


@dataclass
class SuiteOutcome:
    """One validation of a suite: every selected rule, where and when it ran, its Data Docs page."""

    suite: TableSuite
    scope: Scope
    rules: list[RuleOutcome]
    run_id: str | None
    evaluated_at: datetime
    seconds: float
    validation_id: uuid.UUID = field(default_factory=uuid.uuid4)
    data_docs_page: str | None = None
    sample_size: int = 20

    @property
    def success(self) -> bool:
        return all(r.success for r in self.rules)

    @property
    def blocking_failures(self) -> list[RuleOutcome]:
        return [r for r in self.rules if not r.success and r.rule.blocking]

    def rule(self, name: str) -> RuleOutcome:
        for r in self.rules:
            if r.rule.name == name:
                return r
        raise KeyError(name)


def jsonable(value: Any) -> Any:
    """Sample values as JSON: dates as ISO text, decimals as floats, the rest as text."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [jsonable(v) for v in value]
    return str(value)
