"""The OpenAPI document: what apiflask generates, plus what it cannot know on its own.

apiflask documents parameters, bodies, auth and the automatic errors; this adds that errors are
`application/problem+json`, that data endpoints also answer CSV, 304 (ETag) and 503 (warehouse
down), and the `X-Next-Cursor` header of CSV pages.
"""

from __future__ import annotations

from typing import Any

from apiflask import APIFlask

from api_service.errors import PROBLEM_JSON, PROBLEM_SCHEMA

DATA_PREFIXES = ("/api/v1/",)


def configure_openapi(app: APIFlask, description: str) -> None:
    app.config.update(
        DESCRIPTION=description,
        VALIDATION_ERROR_STATUS_CODE=400,
        VALIDATION_ERROR_DESCRIPTION="Invalid request parameters",
        VALIDATION_ERROR_SCHEMA=PROBLEM_SCHEMA,
        HTTP_ERROR_SCHEMA=PROBLEM_SCHEMA,
        AUTH_ERROR_DESCRIPTION="Missing, unknown or revoked API key",
        AUTO_OPERATION_ID=True,
        DOCS_UI="swagger-ui",
        TAGS=[
            {"name": "Flights", "description": "Curated flights and their status events"},
            {"name": "Routes", "description": "Daily route performance mart"},
            {"name": "Airports", "description": "Airports and their daily traffic"},
            {"name": "Aircraft", "description": "Latest aircraft positions"},
            {"name": "Quality", "description": "Data-quality check results"},
            {"name": "Health", "description": "Liveness and readiness probes"},
        ],
    )
    app.spec_processor(_finish_spec)


def _problem_content() -> dict[str, Any]:
    return {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}


def _finish_spec(spec: dict[str, Any]) -> dict[str, Any]:
    spec.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    for path, operations in spec.get("paths", {}).items():
        for operation in operations.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
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
                "503",
                {"description": "The warehouse does not answer", "content": _problem_content()},
            )
    return spec
