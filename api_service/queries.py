"""Every SQL statement the API runs. Values only ever travel as query parameters.

Statements are assembled from the fixed fragments below (a filter is present or not), never from
request text, and page through keyset conditions on the sort key of each list so every page is an
index range scan. Each list fetches `limit + 1` rows: the extra row says whether a next page exists.

Abuse limits: every filter combination a list accepts is served by an index in the list's order
(migrations 0012 and 0034), so a page reads a range of one index, never a whole table or a whole
index. An equality filter leads an index whose next columns are the list's order; a filter that no
index leads (`status` of flights) is accepted only together with a filter whose index range is
small whatever its value (one day, one airport). `Filters.refusals` says what a refused combination
lacks, and the query schemas answer it with a 400 before any SQL runs.
`tests/integration/test_api_query_plans.py` holds every accepted combination of every list to an
index plan on a warehouse of a million flights.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from latam_dagster.tables import REGISTRY, Table

FLIGHT_COLUMNS = REGISTRY["curated.fact_flight"].column_names
LOAD_COLUMNS = REGISTRY["curated.flight_passenger_load"].column_names
FLIGHT_DETAIL_COLUMNS = FLIGHT_COLUMNS + LOAD_COLUMNS
EVENT_COLUMNS = REGISTRY["curated.flight_event_history"].column_names
ROUTE_COLUMNS = REGISTRY["marts.route_daily_performance"].column_names
AIRPORT_COLUMNS = REGISTRY["curated.dim_airport"].column_names
TRAFFIC_COLUMNS = REGISTRY["marts.airport_daily_traffic"].column_names
POSITION_COLUMNS = REGISTRY["curated.aircraft_position_latest"].column_names

Query = tuple[str, dict[str, Any]]


def _cols(columns: Sequence[str], alias: str | None = None) -> str:
    prefix = f"{alias}." if alias else ""
    return ", ".join(prefix + c for c in columns)


def _where(conditions: list[str]) -> str:
    return ("WHERE " + " AND ".join(conditions)) if conditions else ""


@dataclass(frozen=True)
class Filter:
    """`column op value`. An equality filter pins its column: the index it leads then reads the
    rows of that one value, in the order of the index's next columns."""

    column: str
    op: str = "="


@dataclass(frozen=True)
class Filters:
    """The filters a client may combine on one list (by parameter name), and which combinations
    the list's indexes serve.

    `bounding`: filters whose index range is small whatever the value (one day, one airport), so
    any other filter may narrow it. `unindexed`: filters that lead no index in the list's order:
    applied over a whole index they would read every row to fill (or fail to fill) one page, so
    they are accepted only together with a `bounding` filter. Any other combination is served by
    an index that one of its filters leads.
    """

    by: Mapping[str, Filter]
    bounding: tuple[str, ...] = ()
    unindexed: tuple[str, ...] = ()

    def refusals(self, given: Collection[str]) -> dict[str, str]:
        """Why each filter of `given` that no index serves in this combination is refused, by
        filter name; empty when an index serves the combination."""
        if any(name in given for name in self.bounding):
            return {}
        return {
            name: f"filter `{name}` needs {one_of(self.bounding)} as well: no index serves "
            f"`{name}` alone, and without one of them a page could read every row of the list"
            for name in self.unindexed
            if name in given
        }

    def conditions(self, args: Mapping[str, Any]) -> tuple[list[str], dict[str, Any]]:
        """The SQL conditions and parameters of the filters that `args` gives."""
        given = [name for name in self.by if args.get(name) is not None]
        conditions = [f"{self.by[n].column} {self.by[n].op} %({n})s" for n in given]
        return conditions, {name: args[name] for name in given}

    def pinned(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """Column -> value of each equality filter that `args` gives."""
        return {
            f.column: args[name]
            for name, f in self.by.items()
            if f.op == "=" and args.get(name) is not None
        }


def one_of(names: Sequence[str]) -> str:
    """'`a`', '`a` or `b`', '`a`, `b` or `c`'."""
    quoted = [f"`{n}`" for n in names]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"


_DATE_RANGE = {"date_from": Filter("flight_date", ">="), "date_to": Filter("flight_date", "<=")}

# Flights, by (flight_date, flight_key): flight_date, origin, destination and carrier each lead an
# index in that order (0012, 0034). status leads none: it needs a date or an airport, whose index
# range (one day's or one airport's flights) it then narrows.
FLIGHT_FILTERS = Filters(
    {
        "flight_date": Filter("flight_date"),
        "origin": Filter("origin"),
        "destination": Filter("destination"),
        "carrier": Filter("carrier"),
        "status": Filter("status"),
    },
    bounding=("flight_date", "origin", "destination"),
    unindexed=("status",),
)
# Route rows, by their key (flight_date, carrier, origin, destination), which leads with the date
# range; origin, destination and carrier each lead an index followed by flight_date and the rest
# of the key (0034), so every combination is served.
ROUTE_FILTERS = Filters(
    {
        **_DATE_RANGE,
        "origin": Filter("origin"),
        "destination": Filter("destination"),
        "carrier": Filter("carrier"),
    },
    bounding=("origin", "destination"),
)
# One airport's days, by (airport, flight_date) (0034).
TRAFFIC_FILTERS = Filters(_DATE_RANGE)
# Latest results by their key (asset_key, check_name); the history newest first, with an index for
# either filter, both or none (0020, 0034); held-back rows grouped by (table_name, rule).
QUALITY_LATEST_FILTERS = Filters({"asset": Filter("asset_key")}, bounding=("asset",))
QUALITY_HISTORY_FILTERS = Filters(
    {"check": Filter("check_name"), "asset": Filter("asset_key")}, bounding=("check", "asset")
)
REJECT_FILTERS = Filters({"table": Filter("table_name")}, bounding=("table",))
NO_FILTERS = Filters({})


def _keyset_after(
    conditions: list[str],
    params: dict[str, Any],
    after: tuple | None,
    names: Sequence[str],
    op: str,
    pinned: Mapping[str, Any] | None = None,
) -> None:
    """Add the keyset condition `(names) op (values of the previous page's last row)`.

    A column that an equality filter pins to the cursor's own value is left out: it ties on every
    row, so the comparison means the same, and the columns left are those of the index that the
    filter leads, which then reads from the cursor on. (The last column of every sort key is
    unique and never pinned.)
    """
    if after is None:
        return
    pinned = pinned or {}
    keys = [
        (name, value)
        for name, value in zip(names, after, strict=True)
        if name not in pinned or pinned[name] != value
    ]
    columns = ", ".join(name for name, _ in keys)
    values = ", ".join(f"%(after_{name})s" for name, _ in keys)
    conditions.append(f"({columns}) {op} ({values})")
    params.update({f"after_{name}": value for name, value in keys})


def _page(
    select: str,
    relation: str,
    filters: Filters,
    keys: Sequence[str],
    args: Mapping[str, Any],
    after: tuple | None,
    limit: int,
    *,
    descending: bool = False,
    fixed: Mapping[str, Any] | None = None,
    group_by: str = "",
) -> Query:
    """One page of a list: the filters `args` gives and the `fixed` equalities (the resource the
    list belongs to), after the previous page's last row, ordered by `keys` (newest first when
    `descending`), `limit + 1` rows."""
    conditions, params = filters.conditions(args)
    for position, (column, value) in enumerate((fixed or {}).items()):
        conditions.insert(position, f"{column} = %(fixed_{column})s")
        params[f"fixed_{column}"] = value
    op = "<" if descending else ">"
    _keyset_after(conditions, params, after, keys, op, filters.pinned(args))
    params["limit"] = limit + 1
    order = ", ".join(f"{k} DESC" if descending else k for k in keys)
    sql = (
        f"SELECT {select} FROM {relation} {_where(conditions)} {group_by}"
        f"ORDER BY {order} LIMIT %(limit)s"
    )
    return sql, params


def flights(args: dict[str, Any], after: tuple | None, limit: int) -> Query:
    """Flights matching the filters, by (flight_date, flight_key)."""
    keys = ("flight_date", "flight_key")
    return _page(
        _cols(FLIGHT_COLUMNS), "curated.fact_flight", FLIGHT_FILTERS, keys, args, after, limit
    )


def flight(flight_key: str) -> Query:
    """One flight with its passenger load (null counts when no passenger event arrived yet)."""
    sql = (
        f"SELECT {_cols(FLIGHT_COLUMNS, 'f')}, {_cols(LOAD_COLUMNS, 'l')} "
        "FROM curated.fact_flight AS f "
        "LEFT JOIN curated.flight_passenger_load AS l ON l.flight_key = f.flight_key "
        "WHERE f.flight_key = %(flight_key)s"
    )
    return sql, {"flight_key": flight_key}


def flight_exists(flight_key: str) -> Query:
    return (
        "SELECT 1 AS found FROM curated.fact_flight WHERE flight_key = %(flight_key)s",
        {"flight_key": flight_key},
    )


def flight_events(flight_key: str, after: tuple | None, limit: int) -> Query:
    """A flight's status events in the order that decides its curated state."""
    return _page(
        _cols(EVENT_COLUMNS),
        "curated.flight_event_history",
        NO_FILTERS,
        ("event_seq",),
        {},
        after,
        limit,
        fixed={"flight_key": flight_key},
    )


def route_performance(args: dict[str, Any], after: tuple | None, limit: int) -> Query:
    """Rows of marts.route_daily_performance in primary-key order."""
    keys = ("flight_date", "carrier", "origin", "destination")
    relation = "marts.route_daily_performance"
    return _page(_cols(ROUTE_COLUMNS), relation, ROUTE_FILTERS, keys, args, after, limit)


def row(table: Table, key: str) -> Query:
    """One row of a table by its (one-column) key, in the columns the table serves."""
    (column,) = table.key
    return (
        f"SELECT {_cols(table.column_names)} FROM {table.qualified} WHERE {column} = %(key)s",
        {"key": key},
    )


def airport(iata: str) -> Query:
    return row(REGISTRY["curated.dim_airport"], iata)


def airport_traffic(iata: str, args: dict[str, Any], after: tuple | None, limit: int) -> Query:
    """Daily traffic of one airport, by flight_date."""
    relation = "marts.airport_daily_traffic"
    return _page(
        _cols(TRAFFIC_COLUMNS),
        relation,
        TRAFFIC_FILTERS,
        ("flight_date",),
        args,
        after,
        limit,
        fixed={"airport": iata},
    )


def aircraft_position(tail_number: str) -> Query:
    return row(REGISTRY["curated.aircraft_position_latest"], tail_number)


def ping() -> Query:
    return "SELECT 1 AS ok", {}


QUALITY_COLUMNS = REGISTRY["quality.check_evaluation"].column_names


def quality_latest(args: dict[str, Any], after: tuple | None, limit: int) -> Query:
    """The newest evaluation of each check of each asset, by asset then check: rows of the
    table that triggers keep current (migration 0034), read in the order of its key."""
    keys = ("asset_key", "check_name")
    relation = "quality.latest_check_result"
    return _page(_cols(QUALITY_COLUMNS), relation, QUALITY_LATEST_FILTERS, keys, args, after, limit)


def quality_history(args: dict[str, Any], after: tuple | None, limit: int) -> Query:
    """Stored evaluations, newest first, optionally of one check and/or one asset."""
    keys = ("evaluated_at", "evaluation_id")
    relation = "quality.check_evaluation"
    return _page(
        _cols(QUALITY_COLUMNS),
        relation,
        QUALITY_HISTORY_FILTERS,
        keys,
        args,
        after,
        limit,
        descending=True,
    )


REJECT_COLUMNS = ("table_name", "rule", "rows", "oldest_first_seen", "newest_last_seen")


def quality_rejects(args: dict[str, Any], after: tuple | None, limit: int) -> Query:
    """Rows the audit holds back, counted per table and rule (quality.rejects)."""
    select = (
        "table_name, rule, count(*) AS rows, min(first_seen) AS oldest_first_seen, "
        "max(last_seen) AS newest_last_seen"
    )
    return _page(
        select,
        "quality.rejects",
        REJECT_FILTERS,
        ("table_name", "rule"),
        args,
        after,
        limit,
        group_by="GROUP BY table_name, rule ",
    )
