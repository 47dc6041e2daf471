"""Request and response schemas: they validate input and are the OpenAPI document.

Query schemas reject unknown parameters. Patterns and lengths mirror the event contract, so a
value that cannot name anything in the warehouse is a 400 before any SQL runs. A list's query
schema also refuses the filter combinations that no index serves (`api_service.queries.Filters`),
and the document says which (`document_filter_rules`).
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from apiflask import Schema
from apiflask.fields import (
    Boolean,
    Date,
    DateTime,
    Field,
    Float,
    Integer,
    List,
    Nested,
    Raw,
    String,
)
from apiflask.validators import Length, OneOf, Range, Regexp
from marshmallow import ValidationError, validates_schema

from api_service.queries import (
    FLIGHT_FILTERS,
    QUALITY_HISTORY_FILTERS,
    QUALITY_LATEST_FILTERS,
    REJECT_FILTERS,
    ROUTE_FILTERS,
    TRAFFIC_FILTERS,
    Filters,
    one_of,
)
from latam_dagster.contracts.validator import FLIGHT_STATUSES
from latam_dagster.tables import REGISTRY, Column, Table

MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
STATUSES = FLIGHT_STATUSES  # the contract's list, read from its JSON Schema
IATA_AIRPORT = r"^[A-Z]{3}$"
IATA_CARRIER = r"^[A-Z0-9]{2}$"
FLIGHT_KEY = r"^[A-Z0-9]{2}[0-9]{1,4}-[0-9]{4}-[0-9]{2}-[0-9]{2}-[A-Z]{3}$"
CHECK_NAME = r"^[A-Za-z0-9_]{1,200}$"
ASSET_KEY = r"^[A-Za-z0-9_]{1,100}(/[A-Za-z0-9_]{1,100}){0,4}$"
TABLE_NAME = r"^[a-z_]{1,63}\.[a-z_]{1,63}$"
CURSOR = r"^[A-Za-z0-9_-]{1,400}\.[A-Za-z0-9_-]{16}$"


def matching(
    pattern: str,
    error: str,
    description: str | None = None,
    example: str | None = None,
    required: bool = False,
) -> String:
    """A text parameter that must match `pattern` (a 400 with `error` otherwise)."""
    metadata = {k: v for k, v in (("description", description), ("example", example)) if v}
    return String(required=required, validate=Regexp(pattern, error=error), metadata=metadata)


AIRPORT_ERROR = "must be a 3-letter IATA airport code in capitals"


def _airport(description: str) -> String:
    return matching(IATA_AIRPORT, AIRPORT_ERROR, description, "SCL")


def _carrier() -> String:
    return matching(
        IATA_CARRIER, "must be a 2-character IATA carrier code", "IATA carrier code", "LA"
    )


class FormatMixin(Schema):
    format = String(
        validate=OneOf(["json", "csv"]),
        metadata={"description": "`csv` for CSV (same as `Accept: text/csv`); default JSON"},
    )


class PageMixin(FormatMixin):
    limit = Integer(
        load_default=DEFAULT_LIMIT,
        validate=Range(1, MAX_LIMIT),
        metadata={"description": f"rows per page, 1..{MAX_LIMIT}"},
    )
    cursor = String(
        validate=[
            Length(max=512),
            Regexp(CURSOR, error="is not a cursor this API issued"),
        ],
        metadata={
            "description": "`next_cursor` of the previous page of this list. Cursors are signed:"
            " any other value, even one of this form, is a 400"
        },
    )


class DateRangeMixin(Schema):
    # a range with date_from after date_to is empty, and answers an empty list
    date_from = Date(metadata={"description": "first flight_date (YYYY-MM-DD), inclusive"})
    date_to = Date(metadata={"description": "last flight_date (YYYY-MM-DD), inclusive"})


# The vendor key marking, in a filter's generated parameter, the filters one of which it needs
# and every filter of its list; `document_filter_rules` turns it into the document's rule.
NEEDS_ONE_OF = "x-needs-one-of"
LIST_FILTERS = "x-list-filters"


class FilteredList(PageMixin):
    """The query of a list whose filters are `FILTERS`: a combination that no index serves is a
    400 naming the filter to add, like any invalid parameter."""

    FILTERS: ClassVar[Filters]

    @validates_schema
    def _served_by_an_index(self, data: dict[str, Any], **kwargs: Any) -> None:
        given = [name for name in self.FILTERS.by if data.get(name) is not None]
        refusals = self.FILTERS.refusals(given)
        if refusals:
            raise ValidationError({name: [why] for name, why in refusals.items()})


Q = TypeVar("Q", bound=type[FilteredList])


def filtered_by(filters: Filters) -> Callable[[Q], Q]:
    """Class decorator: the list's `filters`, and their rule marked on its unindexed filters for
    `document_filter_rules` (on copies of the fields: a mixin's field may serve other lists)."""

    def decorate(cls: Q) -> Q:
        cls.FILTERS = filters
        if not set(filters.by) <= set(cls._declared_fields):
            raise TypeError(f"{cls.__name__} lacks a field of each of {sorted(filters.by)}")
        for name in filters.unindexed:
            field = copy.copy(cls._declared_fields[name])
            field.metadata = {
                **field.metadata,
                NEEDS_ONE_OF: list(filters.bounding),
                LIST_FILTERS: list(filters.by),
            }
            cls._declared_fields[name] = field
        return cls

    return decorate


@filtered_by(FLIGHT_FILTERS)
class FlightsQuery(FilteredList):
    flight_date = Date(metadata={"description": "scheduled departure date (YYYY-MM-DD)"})
    origin = _airport("origin airport")
    destination = _airport("destination airport")
    carrier = _carrier()
    status = String(validate=OneOf(STATUSES), metadata={"description": "current status"})


@filtered_by(ROUTE_FILTERS)
class RoutesQuery(FilteredList, DateRangeMixin):
    origin = _airport("origin airport")
    destination = _airport("destination airport")
    carrier = _carrier()


@filtered_by(TRAFFIC_FILTERS)
class TrafficQuery(FilteredList, DateRangeMixin):
    pass


class PageQuery(PageMixin):
    pass


class FormatQuery(FormatMixin):
    pass


@filtered_by(QUALITY_LATEST_FILTERS)
class QualityQuery(FilteredList):
    asset = matching(
        ASSET_KEY,
        "is not an asset key like curated/fact_flight",
        "only checks of this asset, e.g. curated/fact_flight",
    )


@filtered_by(QUALITY_HISTORY_FILTERS)
class QualityHistoryQuery(QualityQuery):
    check = matching(
        CHECK_NAME, "is not a check name", "only this check (check_name as in /api/v1/quality)"
    )


@filtered_by(REJECT_FILTERS)
class RejectsQuery(FilteredList):
    table = matching(
        TABLE_NAME,
        "is not a table name like curated.fact_flight",
        "only rows held back from this table, e.g. curated.fact_flight",
    )


FILTERS_PARAMETER = "filters"


def document_filter_rules(operation: dict[str, Any]) -> None:
    """Write into an operation of the OpenAPI document which filter combinations it refuses.

    Parameters are independent of each other in OpenAPI, so a rule between filters cannot be
    said of them one by one: the filters of a list with such a rule become the properties of one
    `filters` object parameter, exploded into the query string as before (`?status=...&origin=...`),
    whose JSON Schema says which filter needs which (`dependentSchemas`). Clients and generators
    then know the 400 before sending, and `tests/integration/test_api_schemathesis.py` sends only
    combinations the document allows as valid ones. Operations without such a rule keep one
    parameter per filter.
    """
    parameters = operation.get("parameters", [])
    marked = [p for p in parameters if NEEDS_ONE_OF in p.get("schema", {})]
    if not marked:
        return
    names = marked[0]["schema"][LIST_FILTERS]
    grouped = [p for p in parameters if p["in"] == "query" and p["name"] in names]
    properties, needs, rules = {}, {}, []
    for parameter in grouped:
        schema = dict(parameter["schema"])
        needed = schema.pop(NEEDS_ONE_OF, None)
        schema.pop(LIST_FILTERS, None)
        if needed:
            needs[parameter["name"]] = {"anyOf": [{"required": [n]} for n in needed]}
            rules.append(f"`{parameter['name']}` needs {one_of(needed)}")
        if "description" in parameter:
            schema["description"] = parameter["description"]
        properties[parameter["name"]] = schema
    first = parameters.index(grouped[0])
    rest = [p for p in parameters if p not in grouped]
    rest.insert(
        first,
        {
            "in": "query",
            "name": FILTERS_PARAMETER,
            "style": "form",
            "explode": True,
            "required": False,
            "description": "the list's filters, each its own query parameter "
            f"(`?origin=SCL&status=arrived`), all of which a row matches; {'; '.join(rules)}",
            "schema": {
                "type": "object",
                "properties": properties,
                "additionalProperties": False,
                "dependentSchemas": needs,
            },
        },
    )
    operation["parameters"] = rest
    responses = operation.get("responses", {})
    if "400" in responses:
        why = f"; or a filter comes without one it needs ({'; '.join(rules)})"
        responses["400"] = {
            **responses["400"],
            "description": responses["400"]["description"] + why,
        }


class FlightKeyPath(Schema):
    flight_key = matching(
        FLIGHT_KEY,
        "is not a flight key like LA800-2026-11-27-SCL",
        example="LA800-2026-11-27-SCL",
        required=True,
    )


class AirportPath(Schema):
    iata = matching(IATA_AIRPORT, AIRPORT_ERROR, example="SCL", required=True)


# --- responses ------------------------------------------------------------------------------


_FIELD_OF_KIND = {
    "text": String,
    "int": Integer,
    "float": Float,
    "bool": Boolean,
    "date": Date,
    "timestamp": DateTime,
    "json": Raw,
}


def _field(column: Column) -> Field:
    kwargs: dict[str, object] = {"allow_none": True} if column.nullable else {"required": True}
    if column.choices:
        kwargs["validate"] = OneOf(column.choices)
    if column.description:
        kwargs["metadata"] = {"description": column.description}
    return _FIELD_OF_KIND[column.kind](**kwargs)


@functools.cache
def row_schema(name: str, columns: tuple[Column, ...]) -> type[Schema]:
    """A response schema of table columns, as the registry declares them (one class per name
    and columns, so every app built in a process documents the same schema)."""
    return type(name, (Schema,), {c.name: _field(c) for c in columns})


def table_schema(table: Table) -> type[Schema]:
    """The response schema of the columns a table serves, named by its `api_name`."""
    return row_schema(table.api_name or _camel(table.name), table.columns)


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def _served(name: str) -> type[Schema]:
    return table_schema(REGISTRY[name])


Flight = _served("curated.fact_flight")
FlightDetail = row_schema(
    "FlightDetail",
    (*REGISTRY["curated.fact_flight"].columns, *REGISTRY["curated.flight_passenger_load"].columns),
)
FlightEvent = _served("curated.flight_event_history")
RoutePerformance = _served("marts.route_daily_performance")
Airport = _served("curated.dim_airport")
AirportTraffic = _served("marts.airport_daily_traffic")
AircraftPosition = _served("curated.aircraft_position_latest")


@functools.cache
def envelope(item: type[Schema], many: bool) -> type[Schema]:
    """`{"data": [...], "next_cursor": ...}` for lists, `{"data": {...}}` for single objects.

    One class per item and kind, so two lists of the same rows share one document schema.
    """
    attrs: dict[str, object] = {}
    if many:
        attrs["data"] = List(Nested(item), required=True)
        attrs["next_cursor"] = String(
            required=True,
            allow_none=True,
            metadata={"description": "pass as `cursor` for the next page; null on the last"},
        )
    else:
        attrs["data"] = Nested(item, required=True)
    suffix = "Page" if many else "Document"
    return type(f"{item.__name__}{suffix}", (Schema,), attrs)


QualityResult = _served("quality.check_evaluation")


class RejectCount(Schema):
    table_name = String(required=True, metadata={"example": "curated.fact_flight"})
    rule = String(required=True, metadata={"example": "flight_airports_known"})
    rows = Integer(required=True, metadata={"description": "rows held back by this rule now"})
    oldest_first_seen = DateTime(
        required=True, metadata={"description": "when the longest-waiting row was first held"}
    )
    newest_last_seen = DateTime(
        required=True, metadata={"description": "when a row was last audited and still failed"}
    )
