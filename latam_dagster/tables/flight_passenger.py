"""`curated.flight_passenger`: each passenger's latest state on each flight (never served)."""

from typing import Any

from latam_dagster.tables.scope import count_scope, xid
from latam_dagster.tables.table import Table


def scope(cur: Any, marks: dict[str, int]) -> tuple[str, int | None]:
    """(flight, passenger) pairs with new events."""
    cur.execute(
        """CREATE TEMP TABLE scope_passengers ON COMMIT DROP AS
           SELECT DISTINCT flight_key, passenger_ref FROM raw.passenger_events
           WHERE ingest_xid >= %s::text::xid8""",
        (xid(marks, "raw.passenger_events"),),
    )
    predicate = "(e.flight_key, e.passenger_ref) IN (SELECT flight_key, passenger_ref FROM scope_passengers)"
    return predicate, count_scope(cur, "scope_passengers")


TABLE = Table(
    "curated",
    "flight_passenger",
    key=("flight_key", "passenger_ref"),
    inputs=("raw.passenger_events",),
    scope=scope,
    event_time_column="last_event_time",
)
