"""Every endpoint against a warehouse the real pipeline filled, compared with the database.

How the API represents what it serves (CSV, ETags, probes) is checked on the seeded warehouse by
test_api_formats.py.
"""

from __future__ import annotations

import pytest

from api_service import queries
from tests.integration.api_expect import rows, scalar, walk

pytestmark = pytest.mark.integration
pytest_plugins = ["tests.integration.api_fixtures"]

FLIGHT_COLS = ", ".join(queries.FLIGHT_COLUMNS)


@pytest.fixture(scope="module")
def api_warehouse(pipeline_warehouse):
    """This module's API reads what the pipeline built from simulated events."""
    return pipeline_warehouse


@pytest.fixture(scope="module")
def owner(api_warehouse) -> str:
    return api_warehouse.owner_url


@pytest.fixture(scope="module")
def sample(owner) -> dict:
    """Values that exist in the generated data, to filter on."""
    busiest = rows(
        owner,
        """SELECT flight_date, origin, count(*) AS n FROM curated.fact_flight
           GROUP BY 1, 2 ORDER BY n DESC, 1, 2 LIMIT 1""",
    )[0]
    flight_with_history = rows(
        owner,
        """SELECT f.flight_key FROM curated.fact_flight AS f
           JOIN curated.flight_passenger_load AS l USING (flight_key)
           WHERE f.event_count >= 3 ORDER BY f.event_count DESC, f.flight_key LIMIT 1""",
    )[0]["flight_key"]
    return {
        "date": busiest["flight_date"],
        "origin": busiest["origin"],
        "flight": flight_with_history,
        "carrier": scalar(owner, "SELECT min(carrier) FROM curated.fact_flight"),
    }


def test_the_pipeline_filled_every_table(owner):
    for table in (
        "curated.fact_flight",
        "curated.flight_passenger_load",
        "curated.aircraft_position_latest",
        "curated.flight_event_history",
        "marts.route_daily_performance",
        "marts.airport_daily_traffic",
    ):
        assert scalar(owner, f"SELECT count(*) FROM {table}") > 0, table


def test_flights_pagination_walks_every_row_exactly_once(client, owner):
    expected = rows(
        owner, f"SELECT {FLIGHT_COLS} FROM curated.fact_flight ORDER BY flight_date, flight_key"
    )
    got, pages = walk(client, "/api/v1/flights", limit=97)
    assert pages > 3
    assert [r["flight_key"] for r in got] == [r["flight_key"] for r in expected]
    assert got == expected


@pytest.mark.parametrize(
    "filters, where",
    [
        ({"flight_date": "date"}, "flight_date = %(date)s"),
        (
            {"flight_date": "date", "origin": "origin"},
            "flight_date = %(date)s AND origin = %(origin)s",
        ),
        ({"carrier": "carrier"}, "carrier = %(carrier)s"),
        ({"origin": "origin", "status": None}, "origin = %(origin)s AND status = 'scheduled'"),
    ],
)
def test_flight_filters(client, owner, sample, filters, where):
    params = {k: (sample[v] if v else "scheduled") for k, v in filters.items()}
    query = "&".join(f"{k}={v}" for k, v in params.items())
    expected = rows(
        owner,
        f"SELECT {FLIGHT_COLS} FROM curated.fact_flight WHERE {where} ORDER BY flight_date, flight_key",
        sample,
    )
    assert expected
    got, _ = walk(client, f"/api/v1/flights?{query}", limit=20)
    assert got == expected


def test_flight_filter_with_no_match_is_an_empty_page(client):
    body = client.get("/api/v1/flights?origin=ZZZ").get_json()
    assert body == {"data": [], "next_cursor": None}


def test_flight_detail_with_passenger_load(client, owner, sample):
    key = sample["flight"]
    expected = rows(
        owner,
        f"""SELECT {", ".join("f." + c for c in queries.FLIGHT_COLUMNS)},
                   l.passengers_booked, l.passengers_checked_in, l.passengers_boarded,
                   l.passengers_cancelled, l.load_factor
            FROM curated.fact_flight AS f
            LEFT JOIN curated.flight_passenger_load AS l USING (flight_key)
            WHERE f.flight_key = %s""",
        (key,),
    )[0]
    response = client.get(f"/api/v1/flights/{key}")
    assert response.status_code == 200
    assert response.get_json() == {"data": expected}
    assert expected["passengers_booked"] is not None


def test_every_flight_detail_matches(client, owner):
    keys = [r["flight_key"] for r in rows(owner, "SELECT flight_key FROM curated.fact_flight")]
    for key in keys[:: max(1, len(keys) // 40)]:
        body = client.get(f"/api/v1/flights/{key}").get_json()
        db = rows(
            owner, f"SELECT {FLIGHT_COLS} FROM curated.fact_flight WHERE flight_key = %s", (key,)
        )
        assert {k: body["data"][k] for k in queries.FLIGHT_COLUMNS} == db[0]


def test_flight_events_in_order_without_personal_data(client, owner, sample):
    key = sample["flight"]
    expected = rows(
        owner,
        f"""SELECT {", ".join(queries.EVENT_COLUMNS)} FROM curated.flight_event_history
            WHERE flight_key = %s ORDER BY event_seq""",
        (key,),
    )
    got, pages = walk(client, f"/api/v1/flights/{key}/events", limit=2)
    assert pages >= 2 and got == expected
    assert [e["event_seq"] for e in got] == list(range(1, len(got) + 1))
    assert all("passenger_ref" not in e and "payload" not in e for e in got)
    raw_count = scalar(
        owner, "SELECT count(*) FROM raw.flight_events WHERE flight_key = %s", (key,)
    )
    assert len(got) == raw_count


def test_unknown_flight_is_404(client):
    for url in (
        "/api/v1/flights/LA9999-1999-01-01-SCL",
        "/api/v1/flights/LA9999-1999-01-01-SCL/events",
    ):
        response = client.get(url)
        assert response.status_code == 404
        assert response.content_type == "application/problem+json"
        assert "LA9999-1999-01-01-SCL" in response.get_json()["detail"]


def test_route_performance_pages_and_filters(client, owner, sample):
    cols = ", ".join(queries.ROUTE_COLUMNS)
    order = "ORDER BY flight_date, carrier, origin, destination"
    expected = rows(owner, f"SELECT {cols} FROM marts.route_daily_performance {order}")
    got, pages = walk(client, "/api/v1/routes/performance", limit=50)
    assert pages > 2 and got == expected

    d = sample["date"]
    expected = rows(
        owner,
        f"""SELECT {cols} FROM marts.route_daily_performance
            WHERE flight_date BETWEEN %(d)s AND %(d)s AND origin = %(o)s {order}""",
        {"d": d, "o": sample["origin"]},
    )
    got, _ = walk(
        client,
        f"/api/v1/routes/performance?date_from={d}&date_to={d}&origin={sample['origin']}",
        limit=3,
    )
    assert expected and got == expected


def test_route_performance_columns_are_the_marts(client, owner):
    mart_columns = [
        r["column_name"]
        for r in rows(
            owner,
            """SELECT column_name FROM information_schema.columns
               WHERE table_schema = 'marts' AND table_name = 'route_daily_performance'
               ORDER BY ordinal_position""",
        )
    ]
    body = client.get("/api/v1/routes/performance?limit=1").get_json()
    assert list(body["data"][0]) == mart_columns


def test_airport_and_its_traffic(client, owner, sample):
    iata = sample["origin"]
    expected = rows(
        owner,
        f"SELECT {', '.join(queries.AIRPORT_COLUMNS)} FROM curated.dim_airport WHERE iata = %s",
        (iata,),
    )[0]
    assert client.get(f"/api/v1/airports/{iata}").get_json() == {"data": expected}

    cols = ", ".join(queries.TRAFFIC_COLUMNS)
    expected = rows(
        owner,
        f"SELECT {cols} FROM marts.airport_daily_traffic WHERE airport = %s ORDER BY flight_date",
        (iata,),
    )
    got, _ = walk(client, f"/api/v1/airports/{iata}/traffic", limit=1)
    assert expected and got == expected
    d = sample["date"]
    got, _ = walk(client, f"/api/v1/airports/{iata}/traffic?date_from={d}&date_to={d}", limit=5)
    assert got == [r for r in expected if r["flight_date"] == d]


def test_unknown_airport_is_404(client):
    for url in ("/api/v1/airports/QQQ", "/api/v1/airports/QQQ/traffic"):
        response = client.get(url)
        assert response.status_code == 404 and "QQQ" in response.get_json()["detail"]


def test_aircraft_positions(client, owner):
    cols = ", ".join(queries.POSITION_COLUMNS)
    expected = rows(
        owner, f"SELECT {cols} FROM curated.aircraft_position_latest ORDER BY tail_number"
    )
    assert expected
    for row in expected:
        response = client.get(f"/api/v1/aircraft/{row['tail_number']}/position")
        assert response.status_code == 200, row["tail_number"]
        assert response.get_json() == {"data": row}
    assert client.get("/api/v1/aircraft/ZZ-NONE/position").status_code == 404
