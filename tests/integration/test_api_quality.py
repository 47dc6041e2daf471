"""Data-quality results and Data Docs, as the warehouse's quality history records them.

The API reads the seeded warehouse: its validations and check evaluations are those of
`tests.integration.api_data`, and what each endpoint must answer is computed from them.
"""

from __future__ import annotations

import pytest

from api_service import queries
from tests.integration.api_expect import json_value, rows, walk

pytestmark = pytest.mark.integration
pytest_plugins = ["tests.integration.api_fixtures"]


def _served(evaluation: dict) -> dict:
    """An evaluation as the API answers it."""
    return {c: json_value(evaluation[c]) for c in queries.QUALITY_COLUMNS}


def _newest_first(evaluations: list[dict]) -> list[dict]:
    return sorted(evaluations, key=lambda e: (e["evaluated_at"], e["evaluation_id"]), reverse=True)


def test_latest_result_of_every_check(client, api_data):
    latest: dict[tuple[str, str], dict] = {}
    for e in _newest_first(api_data.evaluations):
        latest.setdefault((e["asset_key"], e["check_name"]), e)
    expected = [_served(latest[k]) for k in sorted(latest)]
    assert {r["asset_key"] for r in expected} == {v["asset_key"] for v in api_data.validations}
    got, pages = walk(client, "/api/v1/quality", limit=4)
    assert pages > 1 and got == expected
    # the newest of the two fact_flight validations
    flight_runs = [v for v in api_data.validations if v["asset_key"] == "curated/fact_flight"]
    assert len(flight_runs) == 2
    newest = json_value(max(v["evaluated_at"] for v in flight_runs))
    assert all(r["evaluated_at"] == newest for r in got if r["asset_key"] == "curated/fact_flight")


def test_latest_results_of_one_asset(client):
    body = client.get("/api/v1/quality?asset=marts/route_daily_performance").get_json()
    assert body["data"] and {r["asset_key"] for r in body["data"]} == {
        "marts/route_daily_performance"
    }


def test_history_newest_first_and_by_check(client, api_data):
    expected = [_served(e) for e in _newest_first(api_data.evaluations)]
    got, _ = walk(client, "/api/v1/quality/history", limit=5)
    assert got == expected
    got, _ = walk(client, "/api/v1/quality/history?check=flight_keys_unique", limit=1)
    assert len(got) == 2 and got == [r for r in expected if r["check_name"] == "flight_keys_unique"]
    assert all(isinstance(r["statistics"], dict) for r in got)


def test_quality_as_csv(client):
    response = client.get("/api/v1/quality/history?check=flight_keys_unique&format=csv")
    assert response.status_code == 200 and response.content_type.startswith("text/csv")
    assert response.get_data(as_text=True).splitlines()[0] == ",".join(queries.QUALITY_COLUMNS)


def test_data_docs_site_is_served_behind_a_key(client, anon_client):
    response = client.get("/quality/docs/")
    assert response.status_code == 200 and b"<html" in response.data.lower()
    assert client.get("/quality/docs/index.html").status_code == 200
    assert anon_client.get("/quality/docs/").status_code == 401
    assert client.get("/quality/docs/no-such-page.html").status_code == 404
    assert client.get("/quality/docs/%2e%2e/%2e%2e/etc/passwd").status_code == 404


REJECTS = [
    ("curated.fact_flight", "LA9101-2026-11-27-QQQ", "flight_airports_known"),
    ("curated.fact_flight", "LA9102-2026-11-27-QQQ", "flight_airports_known"),
    ("curated.fact_flight", "LA9102-2026-11-27-QQQ", "flight_schedule_ordered"),
    ("curated.flight_passenger_load", "LA9103-2026-11-27-SCL", "load_factor_plausible"),
]


@pytest.fixture
def held_back(api_warehouse):
    """A few held-back rows in quality.rejects, removed afterwards (the data is shared)."""
    url = api_warehouse.owner_url
    for table, key, rule in REJECTS:
        rows(
            url,
            """INSERT INTO quality.rejects (table_name, row_key, rule, observed, first_seen)
               VALUES (%s, %s, %s, '{}'::jsonb, now() - interval '2 hours')
               RETURNING row_key""",
            (table, key, rule),
        )
    yield url
    rows(url, "DELETE FROM quality.rejects WHERE row_key LIKE 'LA910%%' RETURNING row_key")


def test_reject_counts_per_table_and_rule(client, held_back):
    got, pages = walk(client, "/api/v1/quality/rejects", limit=2)
    assert pages == 2
    assert [(r["table_name"], r["rule"], r["rows"]) for r in got] == [
        ("curated.fact_flight", "flight_airports_known", 2),
        ("curated.fact_flight", "flight_schedule_ordered", 1),
        ("curated.flight_passenger_load", "load_factor_plausible", 1),
    ]
    assert all(r["oldest_first_seen"] < r["newest_last_seen"] for r in got)
    body = client.get("/api/v1/quality/rejects?table=curated.flight_passenger_load").get_json()
    assert [r["rule"] for r in body["data"]] == ["load_factor_plausible"]


@pytest.mark.parametrize("bad", ["fact_flight", "curated.fact_flight;drop", "CURATED.X", "a" * 200])
def test_reject_counts_refuse_a_bad_table_name(client, bad):
    response = client.get("/api/v1/quality/rejects", query_string={"table": bad})
    assert response.status_code == 400
    assert "table" in response.get_data(as_text=True)
