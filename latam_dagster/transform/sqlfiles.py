"""Load the analyst-readable SQL files shipped in `latam_dagster/assets/sql/`.

Each file computes its whole table when run as written. A file that can also run incrementally
contains the marker `TRUE /* scope */` where the incremental run puts its filter (the flights or
rows its batch touched), so both paths run the very same statement.
"""

from functools import cache
from importlib import resources

SCOPE_MARKER = "TRUE /* scope */"


@cache
def load_sql(layer: str, table: str) -> str:
    """The SQL text of `assets/sql/<layer>/<table>.sql`."""
    path = resources.files("latam_dagster.assets") / "sql" / layer / f"{table}.sql"
    return path.read_text(encoding="utf-8")


def scoped(sql: str, predicate: str | None) -> str:
    """`sql` restricted by `predicate` (None keeps the full statement)."""
    if SCOPE_MARKER not in sql:
        raise ValueError("this SQL has no scope marker; it cannot run incrementally")
    return sql if predicate is None else sql.replace(SCOPE_MARKER, f"({predicate})")


UPSERT = "\nON CONFLICT "


def without_upsert(sql: str) -> str:
    """`sql` with its trailing `ON CONFLICT ...` clause removed.

    A full refresh runs the statement on an emptied table, where no row can conflict: the plain
    insert gives the same rows without the cost of looking for conflicts.
    """
    if sql.count(UPSERT) != 1:
        raise ValueError("expected one ON CONFLICT clause, at the start of a line")
    return sql[: sql.index(UPSERT)]
