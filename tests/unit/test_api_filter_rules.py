"""Which filter combinations each list accepts, how a refusal reads, and how the OpenAPI document
says it (`api_service.queries.Filters`, `api_service.schemas`). The plans themselves are held on a
warehouse of a million flights in `tests/integration/test_api_query_plans.py`."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from marshmallow import ValidationError

from api_service import create_app, queries, schemas
from api_service.config import get_api_config

PAGE_PARAMETERS = set(schemas.PageMixin._declared_fields)
LIST_QUERIES = [
    schemas.FlightsQuery,
    schemas.RoutesQuery,
    schemas.TrafficQuery,
    schemas.QualityQuery,
    schemas.QualityHistoryQuery,
    schemas.RejectsQuery,
]


@pytest.fixture(scope="module")
def document() -> dict:
    config = get_api_config(database_url="postgresql://nobody@127.0.0.1:1/none", testing=True)
    return create_app(config).test_client().get("/openapi.json").get_json()


@pytest.mark.parametrize("query", LIST_QUERIES, ids=lambda q: q.__name__)
def test_a_list_filters_by_exactly_what_its_query_builder_knows(query):
    """A filter added to a query schema without its SQL (and index rule) is caught here."""
    assert set(query._declared_fields) - PAGE_PARAMETERS == set(query.FILTERS.by)


def test_status_needs_a_date_or_an_airport():
    f = queries.FLIGHT_FILTERS
    for combo in ({"status"}, {"status", "carrier"}):
        (why,) = f.refusals(combo).values()
        assert "`flight_date`, `origin` or `destination`" in why
    for bound in ("flight_date", "origin", "destination"):
        assert f.refusals({"status", bound}) == {}
        assert f.refusals({"status", "carrier", bound}) == {}
    assert f.refusals({"carrier"}) == {} and f.refusals(set()) == {}


@pytest.mark.parametrize("query", LIST_QUERIES, ids=lambda q: q.__name__)
def test_the_schema_refuses_exactly_what_the_filters_refuse(query):
    values = {
        "flight_date": "2026-11-27", "origin": "SCL", "destination": "LIM", "carrier": "LA",
        "status": "arrived", "date_from": "2026-11-01", "date_to": "2026-11-30",
        "asset": "curated/fact_flight", "check": "flight_keys_unique",
        "table": "curated.fact_flight",
    }  # fmt: skip
    names = list(query.FILTERS.by)
    for size in range(len(names) + 1):
        for combo in itertools.combinations(names, size):
            refused = query.FILTERS.refusals(combo)
            try:
                query().load({name: values[name] for name in combo})
                errors = {}
            except ValidationError as exc:
                errors = exc.messages
            assert errors == {name: [why] for name, why in refused.items()}


def test_a_pinned_column_leaves_the_keyset_comparison():
    day = dt.date(2026, 11, 27)
    sql, params = queries.flights({"flight_date": day}, (day, "LA800-2026-11-27-SCL"), 10)
    assert "(flight_key) > (%(after_flight_key)s)" in sql and "after_flight_date" not in params
    # a cursor of another day (a page of another query) keeps its whole meaning
    sql, params = queries.flights({"flight_date": day}, (day.replace(day=28), "LA1"), 10)
    assert "(flight_date, flight_key) > (%(after_flight_date)s, %(after_flight_key)s)" in sql
    sql, _ = queries.route_performance({"origin": "SCL"}, (day, "LA", "SCL", "LIM"), 10)
    assert "(flight_date, carrier, destination) > (" in sql


def test_the_document_says_which_filter_needs_which(document):
    flights = document["paths"]["/api/v1/flights"]["get"]
    parameters = {p["name"]: p for p in flights["parameters"]}
    assert set(parameters) == {"filters", "limit", "cursor", "format"}
    filters = parameters["filters"]
    assert (filters["in"], filters["style"], filters["explode"]) == ("query", "form", True)
    schema = filters["schema"]
    assert set(schema["properties"]) == set(queries.FLIGHT_FILTERS.by)
    assert schema["additionalProperties"] is False
    assert schema["dependentSchemas"] == {
        "status": {"anyOf": [{"required": [n]} for n in ("flight_date", "origin", "destination")]}
    }
    assert not any(key.startswith("x-") for p in schema["properties"].values() for key in p)
    assert "`status` needs" in flights["responses"]["400"]["description"]
    assert "status" in flights["description"] and "400" in flights["description"]
    # lists whose every combination is served keep one parameter per filter
    routes = document["paths"]["/api/v1/routes/performance"]["get"]
    assert {p["name"] for p in routes["parameters"]} >= set(queries.ROUTE_FILTERS.by)
    assert "needs" not in routes["responses"]["400"]["description"]
