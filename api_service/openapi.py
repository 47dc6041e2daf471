"""The OpenAPI document: what apiflask generates, plus what it cannot know on its own.

apiflask documents parameters, bodies, auth and the automatic errors; this adds that errors are
`application/problem+json`, that data endpoints also answer CSV, 304 (ETag), 429 (rate limits)
and 503 (warehouse down), and the `X-Next-Cursor` header of CSV pages, and corrects what apiflask gets wrong here:
the key and scope of every protected blueprint, the tags, and a server URL that does not depend
on who asked first. `tests/integration/test_api_schemathesis.py` holds the API to this document.
"""

from __future__ import annotations

import re
from typing import Any

from apiflask import APIFlask

from api_service.errors import PROBLEM_JSON, PROBLEM_SCHEMA
from api_service.schemas import document_filter_rules

DATA_PREFIXES = ("/api/v1/",)
# a werkzeug rule argument, `<name>` or `<converter:name>`, which OpenAPI writes `{name}`
_RULE_ARGUMENT = re.compile(r"<(?:[^<>:]+:)?([^<>]+)>")

# What each kind of operation declares besides 200, 304 and 503 (added below). A cursor is signed,
# so no schema can tell a forged one that matches its pattern from one the API issued: the
# document says that such a cursor is a 400, on every list.
BAD_PARAMETER = "A parameter is invalid or unknown; the problem's `errors` names it"
BAD_LIST_PARAMETER = f"{BAD_PARAMETER}, or `cursor` is not a `next_cursor` that this list issued"
FORBIDDEN = "The API key lacks the scope"
NOT_FOUND = "Nothing of that name, or a path that names no resource"
LIST_RESPONSES = {400: BAD_LIST_PARAMETER, 403: FORBIDDEN}
LIST_OF_ITEM_RESPONSES = {**LIST_RESPONSES, 404: NOT_FOUND}
ITEM_RESPONSES = {400: BAD_PARAMETER, 403: FORBIDDEN, 404: NOT_FOUND}

# Descriptions of the blueprints' tags, in the order the docs show them. apiflask tags each
# operation with its blueprint's tag only while the app's TAGS setting is unset (with it set,
# every operation would land untagged, under "default"), so they are added to the document here.
TAG_DESCRIPTIONS = {
    "Flights": "Curated flights and their status events",
    "Routes": "Daily route performance mart",
    "Airports": "Airports and their daily traffic",
    "Aircraft": "Latest aircraft positions",
    "Quality": "Data-quality check results",
    "Health": "Liveness and readiness probes",
}


def configure_openapi(app: APIFlask, description: str) -> None:
    app.config.update(
        DESCRIPTION=description,
        VALIDATION_ERROR_STATUS_CODE=400,
        VALIDATION_ERROR_DESCRIPTION="Invalid request parameters",
        VALIDATION_ERROR_SCHEMA=PROBLEM_SCHEMA,
        HTTP_ERROR_SCHEMA=PROBLEM_SCHEMA,
        AUTH_ERROR_DESCRIPTION="Missing, unknown or revoked API key",
        AUTO_OPERATION_ID=True,
        # relative, so it is the host the document came from: apiflask would otherwise write in
        # the host of whichever request built the (cached) document first, and "Try it out"
        # would send every reader's requests there
        SERVERS=[{"url": "/", "description": "the host serving this document"}],
    )
    app.spec_processor(lambda spec: _finish_spec(spec, _blueprint_security(app)))


def _blueprint_security(app: APIFlask) -> dict[str, list[dict[str, list[str]]]]:
    """The security requirement of every route of a blueprint whose before_request needs a key.

    apiflask documents a blueprint's auth only for the first blueprint that uses a given auth
    object, and every blueprint here shares one (`context.auth`): the others would be documented
    as open although they answer 401 without a key.
    """
    required: dict[str, list[dict[str, list[str]]]] = {}
    for name, funcs in app.before_request_funcs.items():
        for func in funcs:
            spec = getattr(func, "_spec", {})
            if name is not None and spec.get("auth") is not None:
                required[name] = [{spec["auth"].name: list(spec.get("roles") or [])}]
    by_path = {}
    for rule in app.url_map.iter_rules():
        blueprint = rule.endpoint.rpartition(".")[0]
        if blueprint in required:
            by_path[_RULE_ARGUMENT.sub(r"{\1}", rule.rule)] = required[blueprint]
    return by_path


def _problem_content() -> dict[str, Any]:
    return {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}


def _finish_spec(spec: dict[str, Any], security: dict[str, list]) -> dict[str, Any]:
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    # apiflask's copies of the error schema: every error response names Problem instead
    for name in ("HTTPError", "ValidationError"):
        schemas.pop(name, None)
    order = list(TAG_DESCRIPTIONS)
    tags = spec.get("tags", [])
    for tag in tags:
        if tag["name"] in TAG_DESCRIPTIONS:
            tag.setdefault("description", TAG_DESCRIPTIONS[tag["name"]])
    tags.sort(key=lambda tag: order.index(tag["name"]) if tag["name"] in order else len(order))
    for path, operations in spec.get("paths", {}).items():
        for operation in operations.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            document_filter_rules(operation)  # a list's filter combinations
            if path in security:
                operation["security"] = security[path]
            responses = operation["responses"]
            for code, response in responses.items():
                if str(code).startswith(("4", "5")):
                    response["content"] = _problem_content()
            if not path.startswith(DATA_PREFIXES):
                continue
            ok = responses.get("200", {})
            content = ok.setdefault("content", {})
            content["text/csv"] = {
                "schema": {"type": "string", "description": "the same rows as CSV, header first"}
            }
            ok.setdefault("headers", {})["ETag"] = {
                "description": "send back in If-None-Match to revalidate",
                "schema": {"type": "string"},
            }
            if "Page" in str(content.get("application/json", {})):
                ok["headers"]["X-Next-Cursor"] = {
                    "description": "CSV only: cursor of the next page (absent on the last)",
                    "schema": {"type": "string"},
                }
            responses.setdefault("304", {"description": "Not modified since the ETag sent"})
            responses.setdefault(
                "401",
                {
                    "description": "Missing, unknown or revoked API key",
                    "content": _problem_content(),
                },
            )
            responses.setdefault(
                "403",
                {"description": "The API key lacks the scope", "content": _problem_content()},
            )
            responses.setdefault(
                "429",
                {
                    "description": "Over a rate limit of the key or the address; wait the "
                    "`Retry-After` seconds",
                    "headers": {
                        "Retry-After": {
                            "description": "seconds until a request is let through again",
                            "schema": {"type": "integer"},
                        }
                    },
                    "content": _problem_content(),
                },
            )
            responses.setdefault(
                "503",
                {"description": "The warehouse does not answer", "content": _problem_content()},
            )
    return spec
