"""Bad input of every kind is a 4xx problem document that says what was wrong, never a 500."""

from __future__ import annotations

import datetime as dt

import pytest

from api_service.pagination import encode_cursor

pytestmark = pytest.mark.integration
pytest_plugins = ["tests.integration.api_fixtures"]

PROBLEM = "application/problem+json"

# (url, status, text the problem's detail must contain)
CASES = [
    ("/api/v1/flights?flight_date=2026-02-30", 400, "flight_date"),
    ("/api/v1/flights?flight_date=27/11/2026", 400, "flight_date"),
    ("/api/v1/flights?flight_date=2026-11-27T10:00:00Z", 400, "flight_date"),
    ("/api/v1/flights?flight_date=0000-01-01", 400, "flight_date"),
    ("/api/v1/flights?flight_date=", 400, "flight_date"),
    ("/api/v1/routes/performance?date_from=yesterday", 400, "date_from"),
    ("/api/v1/airports/SCL/traffic?date_to=2026-13-01", 400, "date_to"),
    ("/api/v1/flights?orign=SCL", 400, "orign"),
    ("/api/v1/flights?page=2", 400, "page"),
    ("/api/v1/routes/performance?flight_date=2026-11-27", 400, "flight_date"),
    ("/api/v1/flights/LA800-2026-11-27-SCL?limit=5", 400, "limit"),
    ("/api/v1/flights?limit=0", 400, "limit"),
    ("/api/v1/flights?limit=1001", 400, "limit"),
    ("/api/v1/flights?limit=-1", 400, "limit"),
    ("/api/v1/flights?limit=ten", 400, "limit"),
    ("/api/v1/flights?limit=1.5", 400, "limit"),
    ("/api/v1/flights?limit=99999999999999999999999", 400, "limit"),
    ("/api/v1/flights?cursor=garbage", 400, "cursor"),
    ("/api/v1/flights?cursor=" + "A" * 600, 400, "cursor"),
    ("/api/v1/flights?origin=scl", 400, "origin"),
    ("/api/v1/flights?origin=SCLX", 400, "origin"),
    ("/api/v1/flights?carrier=LAN", 400, "carrier"),
    ("/api/v1/flights?status=landed", 400, "status"),
    ("/api/v1/flights?format=xml", 400, "format"),
    ("/api/v1/flights?origin=" + "S" * 5000, 400, "query string"),
    ("/api/v1/flights?origin=SCL&origin=LIM", 400, "origin"),
    ("/api/v1/flights?origin=%00SC", 400, "origin"),
    ("/api/v1/flights?origin=%C3%28", 400, "origin"),
    ("/api/v1/flights?origin=%FF", 400, "origin"),
    ("/api/v1/flights?%FF=SCL", 400, "UTF-8"),
    ("/api/v1/flights?origin=S%E2%80%AEL", 400, "origin"),
    ("/api/v1/flights?origin=%EF%BC%B3CL", 400, "origin"),
    ("/api/v1/flights?origin=S\u0301CL", 400, "origin"),
    ("/api/v1/quality/history?check=" + "c" * 300, 400, "check"),
    ("/api/v1/quality/history?check=a%20b", 400, "check"),
    ("/api/v1/flights/LA800", 400, "flight_key"),
    ("/api/v1/flights/la800-2026-11-27-scl", 400, "flight_key"),
    ("/api/v1/flights/LA800-2026-11-27-SCL-EXTRA", 400, "flight_key"),
    ("/api/v1/flights/" + "L" * 400, 400, "flight_key"),
    ("/api/v1/flights/%FF%FE/events", 400, "UTF-8"),
    ("/api/v1/flights/LA800-2026-11-27-SC%00L", 400, "path"),
    ("/api/v1/flights/LA9999-2001-01-01-SCL", 404, "LA9999-2001-01-01-SCL"),
    ("/api/v1/flights/LA9999-2001-02-31-SCL/events", 404, "LA9999-2001-02-31-SCL"),
    ("/api/v1/airports/S", 400, "iata"),
    ("/api/v1/airports/scl", 400, "iata"),
    ("/api/v1/airports/%E2%82%AC%E2%82%AC%E2%82%AC", 400, "iata"),
    ("/api/v1/airports/QQQ", 404, "QQQ"),
    ("/api/v1/airports/QQQ/traffic?date_from=2026-11-27", 404, "QQQ"),
    ("/api/v1/aircraft/cc%20bga/position", 400, "tail_number"),
    ("/api/v1/aircraft/" + "C" * 40 + "/position", 400, "tail_number"),
    ("/api/v1/aircraft/ZZ-NOPE/position", 404, "ZZ-NOPE"),
    ("/api/v1/nothing", 404, "/api/v1/nothing"),
    ("/api/v1/flights/", 404, "/api/v1/flights/"),
    ("/quality/docs/../../etc/passwd", 404, ""),
]


@pytest.mark.parametrize(("url", "status", "mention"), CASES, ids=[c[0][:60] for c in CASES])
def test_bad_input_is_a_client_error(client, url, status, mention):
    response = client.get(url)
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.content_type == PROBLEM
    body = response.get_json()
    assert body["status"] == status and body["title"] and body["type"]
    assert mention in body["detail"]


def test_an_inverted_date_range_is_empty(client, api_data):
    days = sorted({r["flight_date"] for r in api_data.routes})
    assert len(days) > 1  # the range, read the right way round, holds routes
    response = client.get(f"/api/v1/routes/performance?date_from={days[-1]}&date_to={days[0]}")
    assert response.get_json() == {"data": [], "next_cursor": None}


def test_a_cursor_of_another_list_or_secret_is_rejected(client):
    routes_cursor = client.get("/api/v1/routes/performance?limit=1").get_json()["next_cursor"]
    assert routes_cursor
    response = client.get(f"/api/v1/flights?cursor={routes_cursor}")
    assert response.status_code == 400 and "cursor" in response.get_json()["detail"]
    forged = encode_cursor("guessed-secret", "flights", [dt.date(2026, 11, 27), "LA1"])
    response = client.get(f"/api/v1/flights?cursor={forged}")
    assert response.status_code == 400 and response.content_type == PROBLEM


def test_writes_are_not_allowed(client):
    for method in ("post", "put", "patch", "delete"):
        response = getattr(client.client, method)(
            "/api/v1/flights", headers={"Authorization": f"Bearer {client.key}"}, data="{}"
        )
        assert response.status_code == 405 and response.content_type == PROBLEM
