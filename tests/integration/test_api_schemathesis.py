"""Property-based tests of the whole API from its own OpenAPI document (schemathesis).

For every operation, schemathesis generates requests from the parameter schemas, valid ones and
invalid ones, and every answer goes through all of its checks (what `--checks all` runs): no
server error, a documented status code, content type and headers, a body that matches the
documented schema, invalid data rejected, valid data accepted, missing auth refused, undeclared
methods answered 405. The document must therefore say exactly what the API enforces.

Two kinds of valid value cannot come from a schema, so the test supplies them:
- a cursor is signed, so the only valid ones are those the API issued; a valid case carries a
  real cursor of its list, and `test_a_forged_cursor_is_the_declared_400` checks what a forged
  one (that matches the documented pattern) gets;
- a generated flight key, airport or tail number almost never exists, which would leave the
  200 answers of those operations unchecked; half of the valid cases use one that does.

Each operation runs schemathesis's examples, coverage and fuzzing phases; generated examples are
bounded (MAX_EXAMPLES = 100 per operation, derandomised), so CI runs the same cases every time.
The API reads the small seeded warehouse (`tests.integration.api_data`, written in well under a
second), so the module's time is that of the requests themselves.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.core.parameters import ParameterLocation

from api_service import create_app
from api_service.auth import SCOPES
from api_service.config import get_api_config
from api_service.pagination import encode_cursor
from api_service.schemas import CURSOR

pytestmark = pytest.mark.integration
pytest_plugins = ["tests.integration.api_fixtures"]

MAX_EXAMPLES = 100
PROBLEM = "application/problem+json"

load_all_checks()
# every built-in check, as `--checks all` selects them (response time limits are not checks)
ALL_CHECKS = [check for check in CHECKS.get_all() if not isinstance(check, type)]


def _openapi_document() -> dict:
    """The document as the app serves it; building it needs no database."""
    app = create_app(get_api_config(database_url="postgresql://unused@127.0.0.1:1/x", testing=True))
    return app.test_client().get("/openapi.json").get_json()


# Loaded at collection (the document is static); requests go to the session's app in each test.
DOCUMENT = _openapi_document()
schema = schemathesis.openapi.from_dict(DOCUMENT)
LIST_OPERATIONS = sorted(
    path
    for path, operations in DOCUMENT["paths"].items()
    if any(p["name"] == "cursor" for p in operations["get"].get("parameters", []))
)
PATH_OPERATIONS = sorted(path for path in DOCUMENT["paths"] if "{" in path)
DATA_OPERATIONS = sorted(path for path in DOCUMENT["paths"] if path.startswith("/api/v1/"))


# Lists with fewer than two rows in the seeded warehouse (it holds no held-back rows): a cursor
# signed the way the API signs the one after such a row (kind and sort key as in
# api_service.quality).
SIGNED_CURSORS = {
    "/api/v1/quality/rejects": ("quality_rejects", ["curated.fact_flight", "flight_keys_known"]),
}


@dataclass(frozen=True)
class Issued:
    """Values only the warehouse can supply: existing path parameters and issued cursors."""

    path: dict[str, str]
    cursors: dict[str, str]

    def url(self, path: str) -> str:
        return re.sub(r"\{(\w+)\}", lambda m: self.path[m.group(1)], path)


@pytest.fixture(scope="module")
def issued(client, api_config) -> Issued:
    flights = client.get("/api/v1/flights?limit=1000").get_json()["data"]
    flight = next(f for f in flights if f["event_count"] > 1 and f["tail_number"])
    path = {
        "flight_key": flight["flight_key"],
        "iata": flight["origin"],
        "tail_number": flight["tail_number"],
    }
    values = Issued(path, {})
    for item in PATH_OPERATIONS:
        assert client.get(values.url(item)).status_code == 200, f"nothing at {values.url(item)}"
    for list_path in LIST_OPERATIONS:
        cursor = client.get(f"{values.url(list_path)}?limit=1").get_json()["next_cursor"]
        if cursor is None and list_path in SIGNED_CURSORS:
            kind, sort_key = SIGNED_CURSORS[list_path]
            cursor = encode_cursor(api_config.cursor_secret.get_secret_value(), kind, sort_key)
        assert cursor, f"{list_path} has fewer than two rows to page through"
        values.cursors[list_path] = cursor
    return values


def _supply_valid_values(case, issued: Issued) -> None:
    """Put real values where a valid case needs them (see the module docstring)."""
    meta = case.meta
    if case.path_parameters and not meta.is_negative_at(ParameterLocation.PATH):
        generated = "/".join(str(v) for v in case.path_parameters.values())
        if zlib.crc32(generated.encode()) % 2 == 0:  # the other half stays a likely 404
            case.path_parameters = {name: issued.path[name] for name in case.path_parameters}
    if case.query and "cursor" in case.query and not meta.is_negative_at(ParameterLocation.QUERY):
        case.query["cursor"] = issued.cursors[case.operation.path]


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_openapi_document(case, api_app, api_key, issued):
    _supply_valid_values(case, issued)
    # checks that send requests of their own (e.g. without the key) reach the same app
    case.operation.app = case.operation.schema.app = api_app
    case.call_and_validate(headers={"Authorization": f"Bearer {api_key}"}, checks=ALL_CHECKS)


def test_all_checks_are_the_built_in_ones():
    """The list above is every check schemathesis has, not a chosen few."""
    names = {check.__name__ for check in ALL_CHECKS}
    assert {
        "not_a_server_error", "status_code_conformance", "content_type_conformance",
        "response_headers_conformance", "response_schema_conformance",
        "negative_data_rejection", "positive_data_acceptance", "missing_required_header",
        "unsupported_method", "ignored_auth",
    } <= names  # fmt: skip


@pytest.mark.parametrize("path", LIST_OPERATIONS)
def test_a_forged_cursor_is_the_declared_400(path, api_app, api_key, issued):
    cursor = issued.cursors[path]
    body, sig = cursor.split(".")
    forged = f"{body}.{'A' if sig[0] != 'A' else 'B'}{sig[1:]}"  # same form, wrong signature
    assert re.fullmatch(CURSOR, forged)
    operation = schema[path]["GET"]
    case = operation.Case(
        path_parameters={name: issued.path[name] for name in re.findall(r"\{(\w+)\}", path)},
        query={"cursor": forged},
    )
    case.operation.app = schema.app = api_app
    headers = {"Authorization": f"Bearer {api_key}"}
    response = case.call(headers=headers)
    assert response.status_code == 400 and response.headers["content-type"] == [PROBLEM]
    assert "cursor" in response.json()["errors"]["query"]
    declared = DOCUMENT["paths"][path]["get"]["responses"]["400"]
    assert "cursor" in declared["description"] and PROBLEM in declared["content"]
    case.validate_response(response, checks=ALL_CHECKS, headers=headers)


@pytest.mark.parametrize("path", PATH_OPERATIONS)
def test_an_empty_path_parameter_is_a_declared_404(path, api_app, api_key):
    """`/api/v1/flights//events` names no flight: it must not be redirected to another resource
    (the router would merge the slashes), but answered like any path that names nothing. Sent
    by Flask's client, as schemathesis's own transport merges the slashes before sending."""
    names = re.findall(r"\{(\w+)\}", path)
    case = schema[path]["GET"].Case(path_parameters={name: "" for name in names})
    headers = {"Authorization": f"Bearer {api_key}"}
    response = api_app.test_client().get(re.sub(r"\{\w+\}", "", path), headers=headers)
    assert response.status_code == 404 and response.content_type == PROBLEM
    case.operation.app = schema.app = api_app
    case.validate_response(response, checks=ALL_CHECKS, headers=headers)


@pytest.mark.parametrize("path", DATA_OPERATIONS)
def test_every_data_operation_declares_the_key_and_scope_it_needs(path, anon_client, issued):
    """The document names the scope of each operation, and the API refuses it without a key."""
    (requirement,) = DOCUMENT["paths"][path]["get"]["security"]
    assert list(requirement) == list(DOCUMENT["components"]["securitySchemes"])
    (scopes,) = requirement.values()
    assert len(scopes) == 1 and scopes[0] in SCOPES
    assert scopes[0].split(":")[0] in path  # e.g. flights:read on /api/v1/flights/...
    response = anon_client.get(issued.url(path))
    assert response.status_code == 401 and response.content_type == PROBLEM
