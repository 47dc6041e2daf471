"""What every blueprint shares: the app's services, the bearer auth, and the page helper."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from apiflask import APIBlueprint, HTTPTokenAuth, abort
from flask import Response, current_app, g

from api_service import formats, pagination
from api_service.auth import KeyOwner, KeyVerifier
from api_service.config import ApiConfig
from api_service.db import Database

if TYPE_CHECKING:
    from api_service.endpoints import Listing

EXTENSION = "latam_api"

auth = HTTPTokenAuth(
    scheme="Bearer",
    description="An API key from `latam api-key create --name NAME`.",
)


@dataclass
class Services:
    config: ApiConfig
    db: Database
    keys: KeyVerifier


def services() -> Services:
    return current_app.extensions[EXTENSION]


@auth.verify_token
def _verify(token: str) -> KeyOwner | None:
    owner = services().keys.verify(token)
    if owner is not None:
        g.api_key = owner.name  # the access log names the key that made the request
    return owner


@auth.get_user_roles
def _scopes(owner: KeyOwner) -> list[str]:
    return sorted(owner.scopes)


def protect(bp: APIBlueprint, scope: str) -> None:
    """Every route of `bp` needs a key holding `scope` (documented in the OpenAPI spec)."""

    @bp.before_request
    @bp.auth_required(auth, roles=[scope])
    def _require_key() -> None:
        return None


def fetch_page(
    listing: Listing,
    query: Callable[[tuple | None, int], tuple[str, dict[str, Any]]],
    args: dict[str, Any],
) -> Response:
    """Run a keyset-paginated list query (`query(after, limit)`) and answer one page of `listing`
    in the negotiated format."""
    secret = services().config.cursor_secret.get_secret_value()
    kind, keyset = listing.kind, listing.keyset
    after = None
    if args.get("cursor"):
        after = pagination.decode_cursor(secret, kind, args["cursor"], keyset.parsers)
    limit = args["limit"]
    sql, params = query(after, limit)
    rows = services().db.fetch_all(sql, params)
    rows, next_cursor = pagination.page(
        rows, limit, lambda row: pagination.encode_cursor(secret, kind, keyset.of(row))
    )
    return formats.list_response(rows, next_cursor, listing.columns, args.get("format"))


def fetch_item(
    query: tuple[str, dict[str, Any]], columns: Sequence[str], format_arg: str | None, what: str
) -> Response:
    """Answer one row, or a 404 naming what was not found."""
    row = services().db.fetch_one(*query)
    if row is None:
        abort(404, f"{what} not found")
    return formats.item_response(row, columns, format_arg)
