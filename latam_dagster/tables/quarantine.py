"""The quarantine-rate check of each queue, attached to the raw table the queue feeds."""

from latam_dagster.ingest.topology import RAW_TABLE_OF_QUEUE
from latam_dagster.settings import get_quality_settings
from latam_dagster.tables.limits import in_range
from latam_dagster.tables.rules import Rule, TableSuite


def quarantine_rate_query(family: str, raw_table: str, window_hours: float) -> str:
    """One row: messages accepted into `raw_table` and quarantined from the queue, in the window."""
    window = f"now() - interval '{float(window_hours)} hours'"
    return f"""
SELECT '{family}' AS queue_family, accepted, quarantined,
       round(100.0 * quarantined / nullif(accepted + quarantined, 0), 3) AS quarantine_pct
FROM (SELECT (SELECT count(*) FROM {raw_table} WHERE received_at >= {window}) AS accepted,
             (SELECT count(*) FROM raw.quarantine
              WHERE queue LIKE '%.{family}' AND received_at >= {window}) AS quarantined) AS w"""


def quarantine_suite(family: str, raw_table: str) -> TableSuite:
    """The quarantine-rate check of one queue, attached to the raw table it feeds."""
    qs = get_quality_settings()
    return TableSuite(
        name=f"{raw_table}.quarantine_rate",
        asset_key=tuple(raw_table.split(".")),
        table=raw_table,
        key_columns=("queue_family", "accepted", "quarantined"),
        query=quarantine_rate_query(family, raw_table, qs.quarantine_window_hours),
        rules=(
            Rule(
                "quarantine_rate",
                f"Share of the {family} queue's messages quarantined over the last "
                f"{qs.quarantine_window_hours:g} h stays at or below {qs.quarantine_max_pct:g}%.",
                (in_range("quarantine_pct", 0, qs.quarantine_max_pct),),
                blocking=False,
            ),
        ),
    )


def quarantine_suites() -> list[TableSuite]:
    """One suite per queue family."""
    return [quarantine_suite(family, table) for family, table in RAW_TABLE_OF_QUEUE.items()]
