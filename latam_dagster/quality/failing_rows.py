"""SQL that returns every row an expectation rejects, with the table's key columns first.

GX 1.24 can return such a query (`unexpected_index_query`), but on Postgres it is wrong for
compound-key uniqueness (a cross join with ambiguous columns) and for partition batches (a
subquery without parentheses), and unwieldy elsewhere. So the platform writes it itself, from the
same arguments that drive the expectation: short, runnable SQL that an analyst can paste into psql.
"""

from __future__ import annotations

from dataclasses import dataclass

from latam_dagster.tables.rules import Expect


@dataclass(frozen=True)
class Relation:
    """Where an expectation's rows come from: a table (or derived query) and an optional filter."""

    from_sql: str
    where: str | None = None

    def scoped(self, condition: str) -> str:
        return f"{self.where} AND ({condition})" if self.where else condition


def literal(value: object) -> str:
    """A SQL literal for the constants of a suite (numbers, text, booleans)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def _between(column: str, kw: dict) -> str:
    low, high = kw.get("min_value"), kw.get("max_value")
    parts = []
    if low is not None:
        parts.append(f"{column} {'>' if kw.get('strict_min') else '>='} {literal(low)}")
    if high is not None:
        parts.append(f"{column} {'<' if kw.get('strict_max') else '<='} {literal(high)}")
    return f"{column} IS NOT NULL AND NOT ({' AND '.join(parts) or 'TRUE'})"


def rejected_condition(expect: Expect, rel: Relation, kw: dict) -> str | None:
    """The predicate true for the rows the expectation rejects, or None if unknown."""
    kind = expect.kind
    col = kw.get("column")
    if kind == "ExpectColumnValuesToNotBeNull":
        return f"{col} IS NULL"
    if kind == "ExpectColumnValuesToBeBetween":
        return _between(col, kw)
    if kind == "ExpectColumnValuesToMatchRegex":
        return f"{col} IS NOT NULL AND NOT ({col} ~ {literal(kw['regex'])})"
    if kind == "ExpectColumnValuesToBeInSet":
        values = ", ".join(literal(v) for v in kw["value_set"])
        return f"{col} IS NOT NULL AND {col} NOT IN ({values})"
    if kind == "ExpectColumnValuesToBeInReferenceTable":
        ref = f"SELECT {kw['reference_column']} FROM {kw['reference_table']}"
        return f"{col} IS NOT NULL AND {col} NOT IN ({ref})"
    if kind == "ExpectColumnPairValuesAToBeGreaterThanB":
        a, b = kw["column_A"], kw["column_B"]
        op = ">=" if kw.get("or_equal") else ">"
        return f"{a} IS NOT NULL AND {b} IS NOT NULL AND NOT ({a} {op} {b})"
    if kind in ("ExpectColumnValuesToBeUnique", "ExpectCompoundColumnsToBeUnique"):
        cols = ", ".join(expect.columns)
        dup_where = f"WHERE {rel.where} " if rel.where else ""
        dups = f"SELECT {cols} FROM {rel.from_sql} {dup_where}GROUP BY {cols} HAVING count(*) > 1"
        return f"({cols}) IN ({dups})"
    return None


def failing_rows_sql(
    expect: Expect, rel: Relation, key_columns: tuple[str, ...], dates_predicate: str
) -> str | None:
    """SELECT the key columns and the expectation's columns of every rejected row."""
    kw = dict(expect.rendered(dates_predicate))
    condition = rejected_condition(expect, rel, kw)
    if condition is None:
        return None
    columns = list(dict.fromkeys([*key_columns, *expect.columns]))
    order = ", ".join(key_columns)
    return (
        f"SELECT {', '.join(columns)}\nFROM {rel.from_sql}\n"
        f"WHERE {rel.scoped(condition)}\nORDER BY {order}"
    )
