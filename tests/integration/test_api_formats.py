"""How the API represents what it serves, whatever filled the warehouse: CSV equals JSON, the
cursor of a CSV page, ETags and conditional requests, probes and metrics, the OpenAPI document.

The API reads the seeded warehouse; the flight and airport used come from `api_data`.
"""

from __future__ import annotations

import csv
import io

import pytest

from api_service.metrics import metrics_of

pytestmark = pytest.mark.integration
pytest_plugins = ["tests.integration.api_fixtures"]


@pytest.fixture(scope="module")
def sample(api_data) -> dict:
    """A flight with a passenger load and several events, and the airport it leaves from."""
    loaded = {load["flight_key"] for load in api_data.loads}
    flight = min(
        (f for f in api_data.flights if f["flight_key"] in loaded and f["event_count"] >= 3),
        key=lambda f: f["flight_key"],
    )
    return {"flight": flight["flight_key"], "origin": flight["origin"]}


LIST_URLS = [
    "/api/v1/flights?limit=60",
    "/api/v1/routes/performance?limit=60",
    "/api/v1/flights/{flight}/events",
    "/api/v1/airports/{origin}/traffic",
]
ITEM_URLS = ["/api/v1/flights/{flight}", "/api/v1/airports/{origin}"]


def _csv(response) -> list[dict]:
    assert response.status_code == 200
    assert response.content_type.startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


def _as_cells(row: dict) -> dict:
    def cell(v):
        if v is None:
            return ""
        if isinstance(v, bool):
            return "true" if v else "false"
        return str(v) if not isinstance(v, float) else repr(v)

    return {k: cell(v) for k, v in row.items()}


@pytest.mark.parametrize("template", LIST_URLS + ITEM_URLS)
def test_csv_equals_json(client, sample, template):
    url = template.format(**sample)
    body = client.get(url).get_json()
    data = body["data"] if isinstance(body["data"], list) else [body["data"]]
    assert data
    sep = "&" if "?" in url else "?"
    by_param = _csv(client.get(f"{url}{sep}format=csv"))
    by_accept = _csv(client.get(url, headers={"Accept": "text/csv"}))
    assert by_param == by_accept
    assert by_param == [_as_cells(r) for r in data]


def test_csv_page_carries_the_cursor_in_a_header(client):
    json_page = client.get("/api/v1/flights?limit=5").get_json()
    response = client.get("/api/v1/flights?limit=5&format=csv")
    assert response.headers["X-Next-Cursor"] == json_page["next_cursor"]


def test_etag_and_not_modified(client, sample):
    for url in ["/api/v1/flights?limit=10", f"/api/v1/flights/{sample['flight']}"]:
        first = client.get(url)
        etag = first.headers["ETag"]
        assert etag and first.headers["Cache-Control"] == "private, no-cache"
        again = client.get(url, headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.data == b""
        assert client.get(url, headers={"If-None-Match": '"other"'}).status_code == 200
        # another representation has another tag
        assert client.get(url + ("&" if "?" in url else "?") + "format=csv").headers["ETag"] != etag


def test_probes_and_metrics(anon_client, client, api_app):
    assert anon_client.get("/healthz").get_json() == {"status": "ok"}
    assert anon_client.get("/readyz").get_json() == {"status": "ready"}
    client.get("/api/v1/flights?limit=1")
    # the metrics have a listener of their own, not the API's port
    assert anon_client.get("/metrics").status_code == 404
    text = metrics_of(api_app).exposition().decode()
    assert any(
        ln.startswith("latam_api_requests_total{") and 'route="/api/v1/flights"' in ln
        and 'status="200"' in ln
        for ln in text.splitlines()
    )  # fmt: skip


def test_openapi_and_docs(anon_client):
    assert anon_client.get("/openapi.json").status_code == 200
    assert anon_client.get("/docs").status_code == 200
