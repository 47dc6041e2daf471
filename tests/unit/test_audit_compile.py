"""The audit can evaluate every rule of every audited table: checked from the code, without a database.

The audit compiles the suites' expectations to SQL when a batch is published; an expectation it
cannot compile, a rule whose level does not say what its failure does, or a column that the table
lacks would only show up then, as a failed materialization.
"""

from __future__ import annotations

import re

import pytest

from latam_dagster.db import load_migrations
from latam_dagster.quality import audit
from latam_dagster.quality.audit import AuditedTable
from latam_dagster.tables.rules import ROW, TABLE
from latam_dagster.transform.curated import TABLES
from tests import reference_impl

AUDITED: list[AuditedTable] = [t.audit for t in TABLES.values() if t.audit]
IDS = [t.name for t in AUDITED]
_CREATE = re.compile(r"CREATE TABLE (\w+\.\w+) \((.*?)\n\);", re.DOTALL)
_LIKE = re.compile(r"CREATE TABLE (\w+\.\w+)\s*\(LIKE (\w+\.\w+)")
_NOT_COLUMNS = ("PRIMARY", "UNIQUE", "CONSTRAINT", "CHECK", "FOREIGN", "EXCLUDE", "--")


def table_columns() -> dict[str, set[str]]:
    """The columns of every table the migrations create (a LIKE copy has its model's)."""
    tables: dict[str, set[str]] = {}
    for m in load_migrations():
        for name, body in _CREATE.findall(m.sql):
            lines = (line.strip() for line in body.splitlines())
            tables[name] = {
                line.split()[0] for line in lines if line and not line.startswith(_NOT_COLUMNS)
            }
        for name, model in _LIKE.findall(m.sql):
            tables[name] = set(tables[model])
    return tables


COLUMNS = table_columns()


def test_the_audited_tables_are_the_curated_tables_with_row_rules():
    assert {t.published for t in AUDITED} == set(reference_impl.ROW_RULES)
    for table in AUDITED:
        assert table.suite.table == table.published
        assert table.staging in COLUMNS and table.published in COLUMNS
        assert COLUMNS[table.staging] == COLUMNS[table.published]


@pytest.mark.parametrize("table", AUDITED, ids=IDS)
def test_every_expectation_compiles_to_sql(table: AuditedTable):
    for rule in table.suite.rules:
        for expect in rule.expectations:
            condition = audit._row_condition(expect, table)  # raises ValueError if it cannot
            if expect.kind in audit.UNIQUENESS:
                assert condition is None  # a table-level count, not a row predicate
                continue
            assert condition, (rule.name, expect.label())
            for column in expect.columns:
                assert column in condition, (rule.name, expect.label())


@pytest.mark.parametrize("table", AUDITED, ids=IDS)
def test_every_rule_declares_what_its_failure_does(table: AuditedTable):
    """Uniqueness can name no single failing row, so it is a table rule; every other rule names
    its rows and must say it (level=ROW), or a failing row would block the whole warehouse."""
    for rule in table.suite.rules:
        assert rule.level in (ROW, TABLE), rule.name
        unique = any(e.kind in audit.UNIQUENESS for e in rule.expectations)
        assert (rule.level == TABLE) == unique, rule.name
    # the reference (hence the correctness tests) holds back what the suites hold back
    declared = {r.name: r.holds_back for r in table.suite.rules if r.level == ROW}
    assert declared == reference_impl.ROW_RULES[table.published]


@pytest.mark.parametrize("table", AUDITED, ids=IDS)
def test_row_rules_read_columns_the_table_has(table: AuditedTable):
    columns = COLUMNS[table.published]
    assert table.key in columns and table.key in table.suite.key_columns
    assert table.date_column is None or table.date_column in columns
    assert reference_impl.KEYS[table.published] == table.key
    for rule in table.suite.rules:
        for expect in rule.expectations:
            missing = set(expect.columns) - columns
            assert not missing, (rule.name, expect.label(), missing)
            kw = expect.kwargs
            if "reference_table" in kw:
                assert kw["reference_column"] in COLUMNS[kw["reference_table"]], rule.name
            if expect.kind == audit.QUERY_EXPECTATION:
                # the audit selects the key of the rows the query returns from the batch
                query = kw["unexpected_rows_query"]
                assert "{batch}" in query, rule.name
                selected = re.match(r"\s*SELECT\s+(.*?)\s+FROM\s", query, re.DOTALL | re.I)
                assert selected, rule.name
                assert table.key in [c.strip() for c in selected.group(1).split(",")]
