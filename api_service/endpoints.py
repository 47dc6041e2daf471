"""The two shapes every read endpoint takes: a keyset-paged list, and one row.

`list_route` and `item_route` apply the same four apiflask decorators every such endpoint
needs (route, inputs that reject unknown parameters, the response envelope, the documented
error responses), so a blueprint states only what differs: path, schemas, and the query.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from apiflask import APIBlueprint, Schema
from marshmallow import RAISE

from api_service.openapi import ITEM_RESPONSES, LIST_OF_ITEM_RESPONSES, LIST_RESPONSES
from api_service.schemas import FormatQuery, envelope

View = Callable[..., Any]


@dataclass(frozen=True)
class Keyset:
    """The sort key of a list: its columns, and how each is read back from a cursor."""

    columns: tuple[str, ...]
    parsers: tuple[Callable[[Any], Any], ...]

    def of(self, row: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(row[c] for c in self.columns)


def keyset(**parsers: Callable[[Any], Any]) -> Keyset:
    """`keyset(flight_date=as_date, flight_key=as_text)`: columns in sort order."""
    return Keyset(tuple(parsers), tuple(parsers.values()))


@dataclass(frozen=True)
class Listing:
    """A paged list: the kind its cursors are signed for (a cursor of one list is refused by any
    other), its sort key, and the columns of its rows in the order the responses give them."""

    kind: str
    keyset: Keyset
    columns: Sequence[str]


def listing(kind: str, columns: Sequence[str], **parsers: Callable[[Any], Any]) -> Listing:
    """`listing("flights", FLIGHT_COLUMNS, flight_date=as_date, flight_key=as_text)`: the sort
    key's columns in sort order, as `keyset` takes them."""
    return Listing(kind, keyset(**parsers), columns)


def _route(
    bp: APIBlueprint,
    rule: str,
    query: type[Schema],
    output: type[Schema],
    path: type[Schema] | None,
    responses: dict,
    **doc: str,
) -> Callable[[View], View]:
    def decorate(view: View) -> View:
        view = bp.doc(responses=responses, **doc)(view)
        view = bp.output(output)(view)
        view = bp.input(query, location="query", arg_name="args", unknown=RAISE)(view)
        if path is not None:
            view = bp.input(path, location="path", arg_name="path")(view)
        return bp.get(rule)(view)

    return decorate


def list_route(
    bp: APIBlueprint,
    rule: str,
    query: type[Schema],
    item: type[Schema],
    path: type[Schema] | None = None,
) -> Callable[[View], View]:
    """A paged list of `item` rows, filtered by `query` (and below a resource named by `path`:
    then a 404 when that resource does not exist)."""
    responses = LIST_OF_ITEM_RESPONSES if path is not None else LIST_RESPONSES
    return _route(bp, rule, query, envelope(item, many=True), path, responses)


def item_route(
    bp: APIBlueprint,
    rule: str,
    item: type[Schema],
    path: type[Schema],
    **doc: str,
) -> Callable[[View], View]:
    """One `item` row named by `path`, in JSON or CSV; `doc` as apiflask's `doc` takes it
    (summary, description, operation_id) where the view has no docstring to give them."""
    return _route(bp, rule, FormatQuery, envelope(item, many=False), path, ITEM_RESPONSES, **doc)
