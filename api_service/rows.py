"""Single-row endpoints built from the table registry: one per table that declares an `Endpoint`.

`GET /api/v1/aircraft/<tail_number>/position` and `GET /api/v1/airports/<iata>` are such
endpoints: the declaration gives the path, the key's pattern, the scope a key must hold, the
columns and their response schema. A table added to the registry with an endpoint is served
without code here.
"""

from __future__ import annotations

from apiflask import APIBlueprint, Schema
from flask import Response

from api_service import queries
from api_service.context import fetch_item, protect
from api_service.endpoints import item_route
from api_service.schemas import matching, table_schema
from latam_dagster.tables import Registry, Table


def row_blueprint(table: Table) -> APIBlueprint:
    """The blueprint serving one row of `table` by its key, as its declaration says."""
    endpoint = table.endpoint
    if endpoint is None or len(table.key) != 1:
        raise ValueError(
            f"{table.qualified}: a row endpoint needs an endpoint and a one-column key"
        )
    (key,) = table.key
    if f"<{key}>" not in endpoint.path:
        raise ValueError(f"{table.qualified}: endpoint path {endpoint.path!r} lacks <{key}>")
    path_schema = type(
        f"{table.api_name or table.name}Path",
        (Schema,),
        {
            key: matching(
                endpoint.pattern, endpoint.pattern_error, example=endpoint.example, required=True
            )
        },
    )
    bp = APIBlueprint(
        f"row_{table.schema}_{table.name}",
        __name__,
        url_prefix="/api/v1",
        tag=endpoint.tag,
    )
    protect(bp, endpoint.scope)

    @item_route(
        bp,
        endpoint.path,
        table_schema(table),
        path_schema,
        summary=endpoint.summary,
        description=endpoint.description,
        operation_id=f"get_{table.name}",
    )
    def get_row(path: dict, args: dict, **_url_values: str) -> Response:
        value = path[key]
        return fetch_item(
            queries.row(table, value),
            table.column_names,
            args.get("format"),
            f"{endpoint.noun} {value}",
        )

    return bp


def row_blueprints(registry: Registry) -> list[APIBlueprint]:
    return [row_blueprint(t) for t in registry.served()]
