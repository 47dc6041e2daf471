"""Property-based tests of the whole API from its own OpenAPI document (schemathesis).

For every operation, schemathesis generates requests from the parameter schemas (valid ones and
invalid ones) and checks that no answer is a server error and every answer matches the document:
status code, content type, headers and body schema. The number of examples is bounded so the
suite stays fast; CI runs the same bound every time (derandomised).
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from api_service import create_app
from api_service.config import get_api_config

pytestmark = pytest.mark.integration
pytest_plugins = ["tests.integration.api_fixtures"]

MAX_EXAMPLES = 30


def _openapi_document() -> dict:
    """The document as the app serves it; building it needs no database."""
    app = create_app(get_api_config(database_url="postgresql://unused@127.0.0.1:1/x", testing=True))
    return app.test_client().get("/openapi.json").get_json()


# Loaded at collection (the document is static); requests go to the session's app in each test.
schema = schemathesis.openapi.from_dict(_openapi_document())


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_openapi_document(case, api_app, api_key):
    if case.query and "cursor" in case.query:
        # A cursor is opaque and signed: no schema can describe the valid ones, so a generated
        # cursor is (rightly) refused. Cursors are tested by walking real pages elsewhere.
        del case.query["cursor"]
    # checks that send requests of their own (e.g. without the key) reach the same app
    case.operation.app = case.operation.schema.app = api_app
    case.call_and_validate(headers={"Authorization": f"Bearer {api_key}"})
