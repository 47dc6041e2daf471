"""The vocabulary of the suites: expectations, rules (one Dagster check each), table suites, scopes.

Suites are plain data so that the Dagster definitions load without importing Great Expectations;
each `Expect` names a GX expectation class and its arguments and becomes a real GX expectation only
when a validation runs. `gxe.ExpectColumnValuesToBeBetween(column=..., ...)` therefore reads like
GX code and is reviewed like it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

DATES_PLACEHOLDER = "{dates}"
"""In an expectation's SQL, replaced by the scope's date predicate (`flight_date BETWEEN ...`)."""


@dataclass(frozen=True)
class Expect:
    """One GX expectation: its class name in `great_expectations.expectations` (or ours) and args."""

    kind: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    @property
    def columns(self) -> tuple[str, ...]:
        """The columns the expectation reads, for summaries and sample labels."""
        kw = self.kwargs
        if "column" in kw:
            return (kw["column"],)
        if "column_list" in kw:
            return tuple(kw["column_list"])
        if "column_A" in kw:
            return (kw["column_A"], kw["column_B"])
        return ()

    def label(self) -> str:
        """Short human name, e.g. `ExpectColumnValuesToBeBetween(seat_capacity)`."""
        return f"{self.kind}({', '.join(self.columns)})" if self.columns else self.kind

    def rendered(self, dates_predicate: str) -> Mapping[str, Any]:
        """The arguments with `{dates}` in SQL text replaced by the scope's date predicate."""
        return {
            k: v.replace(DATES_PLACEHOLDER, dates_predicate) if isinstance(v, str) else v
            for k, v in self.kwargs.items()
        }


class _ExpectationNamespace:
    """`gxe.ExpectSomething(**kwargs)` builds an `Expect` without importing GX."""

    def __getattr__(self, kind: str):
        if not kind.startswith(("Expect", "Unexpected")):
            raise AttributeError(kind)

        def build(**kwargs: Any) -> Expect:
            return Expect(kind, kwargs)

        return build


gxe = _ExpectationNamespace()


ROW = "row"
TABLE = "table"


@dataclass(frozen=True)
class Rule:
    """A named group of expectations reported as one Dagster asset check.

    `level` says what a failure does when a curated micro-batch is audited before it is published:
    a `row` rule holds back only the rows that fail it (they wait in `quality.rejects` until they
    pass), a `table` rule (keys, consistency between tables) blocks the whole publish and every
    asset downstream. Non-blocking rules only warn, whatever their level. Great Expectations
    validates every rule on whole tables as well, where a blocking failure is an ERROR.
    """

    name: str
    description: str
    expectations: tuple[Expect, ...]
    blocking: bool = True
    level: str = TABLE

    def __post_init__(self) -> None:
        if self.level not in (ROW, TABLE):
            raise ValueError(f"rule {self.name}: level must be {ROW!r} or {TABLE!r}")

    @property
    def severity(self) -> str:
        return "ERROR" if self.blocking else "WARN"

    @property
    def holds_back(self) -> bool:
        """Rows failing this rule are held back from publication (not the whole batch)."""
        return self.blocking and self.level == ROW


@dataclass(frozen=True)
class TableSuite:
    """Every rule of one table (or one derived query), validated in a single GX pass.

    `key_columns` name the failing rows in samples and in the SQL that lists them. Suites with a
    `date_column` validate only the scope's dates when a run covers partitions. `query` replaces
    the table for suites that check a derived relation (such as the quarantine rate of a queue).
    """

    name: str
    asset_key: tuple[str, ...]
    table: str
    key_columns: tuple[str, ...]
    rules: tuple[Rule, ...]
    date_column: str | None = None
    reference_assets: tuple[tuple[str, ...], ...] = ()
    query: str | None = None
    description: str = ""

    def rule(self, name: str) -> Rule:
        for rule in self.rules:
            if rule.name == name:
                return rule
        raise KeyError(f"{self.name} has no rule {name!r}")

    @property
    def asset_key_str(self) -> str:
        return "/".join(self.asset_key)


@dataclass(frozen=True)
class Scope:
    """Which rows of a suite's table a validation covers: all, or a range of dates."""

    start: date | None = None
    end: date | None = None

    @property
    def is_whole_table(self) -> bool:
        return self.start is None

    @property
    def label(self) -> str | None:
        """The partition as users see it: `2026-11-27`, `2026-11-01...2026-11-27`, or None."""
        if self.start is None:
            return None
        if self.end is None or self.end == self.start:
            return self.start.isoformat()
        return f"{self.start.isoformat()}...{self.end.isoformat()}"

    def predicate(self, column: str | None) -> str:
        """SQL predicate selecting the scope's rows (`TRUE` for the whole table)."""
        if self.start is None or column is None:
            return "TRUE"
        end = self.end or self.start
        return f"{column} BETWEEN DATE '{self.start.isoformat()}' AND DATE '{end.isoformat()}'"

    @classmethod
    def parse(cls, label: str | None) -> Scope:
        """Inverse of `label`; also accepts `start..end`."""
        if not label:
            return cls()
        for sep in ("...", ".."):
            if sep in label:
                a, b = label.split(sep, 1)
                return cls(date.fromisoformat(a), date.fromisoformat(b))
        day = date.fromisoformat(label)
        return cls(day, day)
