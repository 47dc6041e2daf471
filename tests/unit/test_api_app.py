"""What the app answers before it needs the database: spec, docs, probes, guards, errors."""

import pytest

from api_service import create_app
from api_service.config import get_api_config

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def client():
    # a database that does not exist: nothing here may need it
    config = get_api_config(
        database_url="postgresql://nobody@127.0.0.1:1/none", testing=True, key_cache_seconds=0
    )
    return create_app(config).test_client()


def test_openapi_document_lists_every_endpoint(client):
    spec = client.get("/openapi.json").get_json()
    assert set(spec["paths"]) >= {
        "/api/v1/flights",
        "/api/v1/flights/{flight_key}",
        "/api/v1/flights/{flight_key}/events",
        "/api/v1/routes/performance",
        "/api/v1/airports/{iata}",
        "/api/v1/airports/{iata}/traffic",
        "/api/v1/aircraft/{tail_number}/position",
        "/api/v1/quality",
        "/api/v1/quality/history",
        "/healthz",
        "/readyz",
    }
    flights = spec["paths"]["/api/v1/flights"]["get"]
    assert flights["security"] == [{"BearerAuth": ["flights:read"]}]
    # the filters are one exploded object parameter: its schema says which needs which
    (filters,) = [p for p in flights["parameters"] if p["name"] == "filters"]
    assert filters["explode"] and "status" in filters["schema"]["dependentSchemas"]
    assert {p["name"] for p in flights["parameters"]} - {"filters"} | set(
        filters["schema"]["properties"]
    ) == {
        "flight_date", "origin", "destination", "carrier", "status", "limit", "cursor", "format",
    }  # fmt: skip
    assert "text/csv" in flights["responses"]["200"]["content"]
    assert PROBLEM in flights["responses"]["400"]["content"]


def test_interactive_docs(client):
    response = client.get("/docs")
    assert response.status_code == 200 and b"openapi.json" in response.data


def test_healthz_needs_no_database_and_readyz_says_503(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    response = client.get("/readyz")
    assert response.status_code == 503 and response.content_type == PROBLEM


def test_data_endpoints_need_a_key(client):
    response = client.get("/api/v1/flights")
    assert response.status_code == 401 and response.content_type == PROBLEM
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/flights?origin=%00SCL",
        "/api/v1/flights?origin=%FF%FE",
        "/api/v1/flights?origin=SCL&origin=LIM",
        "/api/v1/flights?origin=" + "A" * 3000,
        "/api/v1/flights/" + "A" * 600,
    ],
)
def test_request_guard_answers_400_before_anything_else(client, url):
    response = client.get(url)
    assert response.status_code == 400 and response.content_type == PROBLEM
    assert response.get_json()["detail"]


def test_unknown_route_and_method_are_problems(client):
    response = client.get("/api/v2/flights")
    assert response.status_code == 404 and response.content_type == PROBLEM
    response = client.delete("/api/v1/flights")
    assert response.status_code == 405 and response.content_type == PROBLEM


def test_metrics_exposition(client):
    from api_service.metrics import metrics_of

    client.get("/healthz")
    text = metrics_of(client.application).exposition().decode()
    assert 'latam_api_requests_total{method="GET",route="/healthz",status="200"}' in text
    assert "latam_api_request_duration_seconds_bucket" in text
    assert "latam_api_requests_in_flight" in text
