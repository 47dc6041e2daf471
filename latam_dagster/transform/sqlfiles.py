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
