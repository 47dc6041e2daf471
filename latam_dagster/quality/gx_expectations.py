"""Expectations of our own, registered with Great Expectations when this module is imported.

Referential integrity ("every origin is an airport of curated.dim_airport") has no core GX
expectation that stays in SQL: `ExpectColumnValuesToBeInSet` would inline thousands of codes into
every query and into the SQL that lists failing rows. This one compiles to
`column IN (SELECT reference_column FROM reference_table)`, so Postgres does the work and the
failing-row SQL stays readable. Imports GX: load it only from the validation engine.
"""

from __future__ import annotations

from typing import ClassVar

import sqlalchemy as sa
from great_expectations.execution_engine import PandasExecutionEngine, SqlAlchemyExecutionEngine
from great_expectations.expectations.expectation import ColumnMapExpectation
from great_expectations.expectations.metrics.map_metric_provider import (
    ColumnMapMetricProvider,
    column_condition_partial,
)
from great_expectations.render import RenderedStringTemplateContent
from great_expectations.render.renderer.renderer import renderer


def _reference_table(qualified: str) -> sa.TableClause:
    schema, _, name = qualified.rpartition(".")
    return sa.table(name, schema=schema or None)


class ColumnValuesInReferenceTable(ColumnMapMetricProvider):
    """Row-wise: the value occurs in `reference_table.reference_column`."""

    condition_metric_name = "column_values.in_reference_table"
    condition_value_keys = ("reference_table", "reference_column")

    @column_condition_partial(engine=SqlAlchemyExecutionEngine)
    def _sqlalchemy(cls, column, reference_table: str, reference_column: str, **kwargs):
        ref = _reference_table(reference_table)
        return column.in_(sa.select(sa.column(reference_column)).select_from(ref))

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column, reference_table: str, reference_column: str, **kwargs):
        raise NotImplementedError("the reference table lives in the warehouse: validate in SQL")


class ExpectColumnValuesToBeInReferenceTable(ColumnMapExpectation):
    """Expect each non-null value to exist in a column of another warehouse table."""

    reference_table: str
    reference_column: str

    map_metric = "column_values.in_reference_table"
    success_keys = ("reference_table", "reference_column", "mostly")
    args_keys = ("column", "reference_table", "reference_column")
    library_metadata: ClassVar[dict] = {"maturity": "production", "tags": ["referential"]}

    @classmethod
    @renderer(renderer_type="renderer.prescriptive")
    def _prescriptive_renderer(cls, configuration=None, result=None, runtime_configuration=None):
        kwargs = configuration.kwargs if configuration else {}
        return [
            RenderedStringTemplateContent(
                content_block_type="string_template",
                string_template={
                    "template": "$column values must exist in $reference_table.$reference_column.",
                    "params": {
                        "column": kwargs.get("column"),
                        "reference_table": kwargs.get("reference_table"),
                        "reference_column": kwargs.get("reference_column"),
                    },
                    "styling": (runtime_configuration or {}).get("styling"),
                },
            )
        ]


class Xid8(sa.types.UserDefinedType):
    """Postgres `xid8` (the tables' `updated_xid`), unknown to SQLAlchemy's reflection."""

    cache_ok = True

    def get_col_spec(self, **_kw) -> str:
        return "XID8"


def register_pg_types() -> None:
    """Teach SQLAlchemy's Postgres reflection the types our tables use and it lacks.

    GX reads every column's type before validating; an unknown type (reflected as NullType)
    makes that step fail for the whole table.
    """
    from sqlalchemy.dialects.postgresql import base as pg_base

    pg_base.ischema_names.setdefault("xid8", Xid8)


CUSTOM_EXPECTATIONS = {
    "ExpectColumnValuesToBeInReferenceTable": ExpectColumnValuesToBeInReferenceTable
}
