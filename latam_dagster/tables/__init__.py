"""The table registry: one declaration per warehouse table, everything else derives from it.

Each module here declares one table (or, for the marts, the two daily marts): its key, the
columns the API serves, its SQL file and watermarked inputs, how an incremental run finds its
scope, and its quality rules. From the registry derive the curated assets and their checks
(`assets/curated.py`, `quality/`), the incremental transforms (`transform/curated.py`), the audit
(`quality/audit.py`), the API's column lists, response schemas and single-row endpoints
(`api_service/`), and the exporter's freshness columns. Adding a table means adding a module here
(and its migration and SQL file); nothing else repeats its facts.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from latam_dagster.tables import (
    aircraft_position_latest,
    dim_airport,
    fact_flight,
    flight_event_history,
    flight_passenger,
    flight_passenger_load,
    marts,
    quality_results,
)
from latam_dagster.tables.quarantine import quarantine_suites
from latam_dagster.tables.rules import TableSuite
from latam_dagster.tables.table import AuditedTable, Column, Endpoint, Table, columns

__all__ = [
    "REGISTRY",
    "AuditedTable",
    "Column",
    "Endpoint",
    "Registry",
    "Table",
    "columns",
]


class Registry:
    """The declared tables, in dependency order (a table after the tables it reads)."""

    def __init__(self, tables: Iterable[Table]) -> None:
        self._tables: dict[str, Table] = {}
        for table in tables:
            if table.qualified in self._tables:
                raise ValueError(f"{table.qualified} is declared twice")
            missing = [t for t in table.inputs if t not in self._tables and t.startswith("curated")]
            if missing:
                raise ValueError(f"{table.qualified} reads {missing}, declared after it or never")
            self._tables[table.qualified] = table

    def __getitem__(self, qualified: str) -> Table:
        try:
            return self._tables[qualified]
        except KeyError:
            raise KeyError(f"no table {qualified!r} in the registry") from None

    def __iter__(self) -> Iterator[Table]:
        return iter(self._tables.values())

    def __contains__(self, qualified: object) -> bool:
        return qualified in self._tables

    def with_tables(self, *tables: Table) -> Registry:
        """This registry with more tables (declared after the existing ones)."""
        return Registry([*self, *tables])

    def curated(self) -> list[Table]:
        """The curated tables the transforms compute from watermarked inputs, in order."""
        return [t for t in self if t.schema == "curated" and t.inputs and not t.view]

    def curated_by_name(self) -> dict[str, Table]:
        return {t.name: t for t in self.curated()}

    def audited(self) -> dict[str, AuditedTable]:
        """Tables published through the audit, by table name."""
        return {t.name: t.audit for t in self if t.audit is not None}

    def served(self) -> list[Table]:
        """Tables the API serves one row of by key, from the declaration alone."""
        return [t for t in self if t.endpoint is not None]

    def suites(self) -> list[TableSuite]:
        """Every suite, upstream first: the queues' quarantine rates, then each table's rules."""
        return [*quarantine_suites(), *(t.suite for t in self if t.suite is not None)]

    def suite(self, name: str) -> TableSuite:
        for suite in self.suites():
            if suite.name == name:
                return suite
        raise KeyError(f"no suite named {name!r}")


REGISTRY = Registry(
    [
        dim_airport.TABLE,
        fact_flight.TABLE,
        flight_passenger.TABLE,
        flight_passenger_load.TABLE,
        aircraft_position_latest.TABLE,
        flight_event_history.TABLE,
        marts.ROUTE_DAILY_PERFORMANCE,
        marts.AIRPORT_DAILY_TRAFFIC,
        quality_results.TABLE,
    ]
)
