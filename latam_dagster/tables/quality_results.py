"""`quality.check_evaluation`: every stored check evaluation, as `/api/v1/quality` serves it.

`quality.latest_check_result` holds the newest row of each check in the same columns.
"""

from latam_dagster.tables.table import Table, columns

TABLE = Table(
    "quality",
    "check_evaluation",
    key=("evaluation_id",),
    api_name="QualityResult",
    columns=columns(
        "evaluation_id:int check_name:text asset_key:text table_name:text partition_key:text?"
        " run_id:text? evaluated_at:timestamp success:bool severity:text blocking:bool"
        " description:text expectations_evaluated:int expectations_failed:int"
        " element_count:int? unexpected_count:int unexpected_percent:float? statistics:json"
        " failing_sample:json unexpected_index_query:text?",
        {
            "statistics": "observed values per expectation",
            "failing_sample": "failing rows, by key",
            "unexpected_index_query": "SQL returning every failing row",
        },
        severity=("ERROR", "WARN"),
    ),
)
