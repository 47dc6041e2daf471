"""What the registry says about one table: `Table`, its served `Column`s and its `Endpoint`.

A declaration is plain data. The transforms, the Dagster assets and checks, the audit, the API and
the exporter read it; none of them repeats its facts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache, cached_property
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from latam_dagster.tables.rules import Rule, TableSuite

ColumnKind = Literal["text", "int", "float", "bool", "date", "timestamp", "json"]
KINDS: tuple[str, ...] = ("text", "int", "float", "bool", "date", "timestamp", "json")
ScopeFn = Callable[[Any, dict[str, int]], tuple[str, int | None]]
"""(cursor, watermarks) -> (SQL predicate restricting the table's SQL to the batch, keys in scope)."""


@dataclass(frozen=True)
class Column:
    """A column the table serves: name, kind (API type), nullability, allowed values, and what
    it means where the name does not say it (the API's document shows it)."""

    name: str
    kind: ColumnKind
    nullable: bool = False
    choices: tuple[str, ...] | None = None
    description: str | None = None


def columns(
    spec: str, described: Mapping[str, str] | None = None, **choices: tuple[str, ...]
) -> tuple[Column, ...]:
    """Columns from a compact spec: `"flight_key:text status:text dep_delay_min:float?"`.

    `?` marks a nullable column; `described` gives columns a description; keyword arguments
    give a column its allowed values.
    """
    described = dict(described or {})
    out = []
    for item in spec.split():
        name, _, kind = item.partition(":")
        nullable = kind.endswith("?")
        kind = kind.removesuffix("?")
        if kind not in KINDS:
            raise ValueError(f"column {name}: unknown kind {kind!r} (one of {', '.join(KINDS)})")
        column = Column(name, kind, nullable, choices.pop(name, None), described.pop(name, None))  # type: ignore[arg-type]
        out.append(column)
    if choices or described:
        raise ValueError(
            f"choices or descriptions of undeclared columns: {sorted([*choices, *described])}"
        )
    return tuple(out)


@dataclass(frozen=True)
class Endpoint:
    """A single-row read endpoint the API builds from the declaration alone.

    `path` is below `/api/v1` with the key column in angle brackets, e.g.
    `/aircraft/<tail_number>/position`; `pattern` validates the key before any SQL runs.
    """

    path: str
    pattern: str
    example: str
    scope: str
    tag: str
    noun: str
    """What a row is, in a 404's message: `airport` gives "airport XYZ not found"."""
    summary: str
    description: str
    pattern_error: str = "is not a valid key"


@dataclass(frozen=True)
class AuditedTable:
    """A curated table published through the audit: its suite, key and date column."""

    name: str
    suite: TableSuite
    key: str
    date_column: str | None = None

    @property
    def staging(self) -> str:
        return f"staging.{self.name}"

    @property
    def published(self) -> str:
        return f"curated.{self.name}"


@dataclass(frozen=True)
class Table:
    """One warehouse table: where it lives, what it serves, how it is computed and checked.

    Curated tables have a SQL file (`sql_file`, default `assets/sql/<schema>/<name>.sql`) and
    watermarked `inputs`; `scope` finds what a batch changed (None: the SQL recomputes the whole
    table every run). `rules` become the table's checks; `audited` tables are written to
    `staging.<name>` and published through the audit. `api_name` names the response schema of
    `columns` in the OpenAPI document; `endpoint` makes the API serve one row by key.
    """

    schema: str
    name: str
    key: tuple[str, ...]
    columns: tuple[Column, ...] = ()
    api_name: str | None = None
    rules: tuple[Rule, ...] = ()
    references: tuple[str, ...] = ()
    """Tables the rules read (their assets are the checks' additional dependencies)."""
    date_column: str | None = None
    """The flight date of a row: marts partition on it, the audit records the dates it touched."""
    partitioned: bool = False
    audited: bool = False
    inputs: tuple[str, ...] = ()
    scope: ScopeFn | None = None
    rescope: str | None = None
    """SQL listing the keys of the batch's scope: held-back rows among them are audited again."""
    feeds_marts: bool = False
    event_time_column: str | None = None
    """The time of the newest event a row reflects: the exporter's freshness of the table."""
    endpoint: Endpoint | None = None
    sql_file: Path | None = None
    view: bool = False
    description: str = ""

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def asset_key(self) -> tuple[str, str]:
        return (self.schema, self.name)

    @property
    def written(self) -> str:
        """The table the SQL writes: staging for audited tables, the table itself otherwise."""
        return f"staging.{self.name}" if self.audited else self.qualified

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @cached_property
    def suite(self) -> TableSuite | None:
        """The table's rules as the suite Great Expectations validates (None without rules)."""
        if not self.rules:
            return None
        return TableSuite(
            name=self.qualified,
            asset_key=self.asset_key,
            table=self.qualified,
            key_columns=self.key,
            rules=self.rules,
            date_column=self.date_column if self.partitioned else None,
            reference_assets=tuple(tuple(r.split(".")) for r in self.references),
        )

    @cached_property
    def audit(self) -> AuditedTable | None:
        """How the audit publishes the table (None: the SQL writes the table directly)."""
        if not self.audited:
            return None
        suite = self.suite
        if suite is None or len(self.key) != 1:
            raise ValueError(f"{self.qualified}: an audited table needs rules and a one-column key")
        return AuditedTable(self.name, suite, self.key[0], self.date_column)

    def sql(self) -> str:
        """The SQL text that computes the table (read once per process: every micro-batch runs it)."""
        if self.sql_file is not None:
            return _read_sql(Path(self.sql_file))
        return _read_sql(
            resources.files("latam_dagster.assets") / "sql" / self.schema / f"{self.name}.sql"
        )

    @property
    def sql_path(self) -> str:
        """The SQL file as shown in the UI."""
        return str(self.sql_file or f"assets/sql/{self.schema}/{self.name}.sql")


@cache
def _read_sql(path: Any) -> str:
    return path.read_text(encoding="utf-8")
