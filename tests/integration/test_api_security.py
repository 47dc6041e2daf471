"""API keys and scopes, the read-only role, and SQL injection through every parameter."""

from __future__ import annotations

import psycopg2
import psycopg2.errors
import pytest

from api_service import queries
from api_service.auth import SCOPES, hash_key, revoke_key
from api_service.db import Database
from latam_dagster.db import connection
from tests.integration.api_expect import scalar

pytestmark = pytest.mark.integration
pytest_plugins = ["tests.integration.api_fixtures"]

PROBLEM = "application/problem+json"
SCOPE_OF = {
    "/api/v1/flights": "flights:read",
    "/api/v1/routes/performance": "routes:read",
    "/api/v1/airports/SCL": "airports:read",
    "/api/v1/aircraft/CC-BGA/position": "aircraft:read",
    "/api/v1/quality": "quality:read",
    "/quality/docs/": "quality:read",
}


def _status(anon_client, url: str, authorization: str | None) -> tuple[int, str]:
    headers = {"Authorization": authorization} if authorization is not None else {}
    response = anon_client.get(url, headers=headers)
    return response.status_code, response.content_type


@pytest.mark.parametrize("url", list(SCOPE_OF))
@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Bearer latam_not-a-real-key",
        "Basic dXNlcjpwYXNz",
        "Token latam_x",
        "Bearer " + "k" * 5000,
        "Bearer \u00e9\u00e8",
    ],
)
def test_missing_or_wrong_key_is_401(anon_client, url, authorization):
    assert _status(anon_client, url, authorization) == (401, PROBLEM)


def test_key_without_the_scope_is_403(anon_client, api_warehouse, make_key):
    for url, scope in SCOPE_OF.items():
        others = [s for s in SCOPES if s != scope]
        key = make_key(others)
        assert _status(anon_client, url, f"Bearer {key}") == (403, PROBLEM), url
        only = make_key([scope])
        assert _status(anon_client, url, f"Bearer {only}")[0] not in (401, 403), url


def test_revoked_key_is_401(anon_client, api_warehouse, make_key):
    key = make_key(name="soon-revoked")
    assert _status(anon_client, "/api/v1/flights?limit=1", f"Bearer {key}")[0] == 200
    with connection(api_warehouse.owner_url) as conn:
        assert revoke_key(conn, "soon-revoked") == 1
    assert _status(anon_client, "/api/v1/flights?limit=1", f"Bearer {key}") == (401, PROBLEM)


def test_keys_are_stored_hashed(api_warehouse, make_key):
    key = make_key(name="hash-check")
    stored = scalar(
        api_warehouse.owner_url,
        "SELECT key_hash FROM api.api_keys WHERE name = 'hash-check' AND revoked_at IS NULL",
    )
    assert bytes(stored) == hash_key(key)
    dump = scalar(api_warehouse.owner_url, "SELECT string_agg(t::text, '|') FROM api.api_keys t")
    assert key not in dump and key[len("latam_") :] not in dump


# --- the read-only role ---------------------------------------------------------------------

WRITES = [
    "INSERT INTO curated.fact_flight (flight_key) VALUES ('x')",
    "UPDATE curated.fact_flight SET status = 'cancelled'",
    "DELETE FROM marts.route_daily_performance",
    "TRUNCATE marts.airport_daily_traffic",
    "UPDATE api.api_keys SET revoked_at = NULL",
    "INSERT INTO api.api_keys (name, key_prefix, key_hash, scopes) VALUES ('x','x','x','{}')",
    "CREATE TABLE curated.evil (x int)",
    "CREATE TABLE public.evil (x int)",
    "CREATE TABLE evil (x int)",
    "CREATE SCHEMA evil",
    "DROP TABLE curated.fact_flight",
    "ALTER TABLE curated.fact_flight ADD COLUMN evil int",
    "CREATE VIEW curated.evil AS SELECT 1",
    "GRANT SELECT ON raw.passenger_events TO PUBLIC",
]
RAW_READS = [
    "SELECT * FROM raw.passenger_events LIMIT 1",
    "SELECT * FROM raw.flight_events LIMIT 1",
    "SELECT * FROM raw.position_reports LIMIT 1",
    "SELECT * FROM raw.quarantine LIMIT 1",
    "SELECT * FROM public.schema_migrations",
]


def _as_reader(api_warehouse, sql: str, read_write: bool = False) -> None:
    conn = psycopg2.connect(api_warehouse.reader_url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            if read_write:  # a client may try to lift the role's read-only default
                cur.execute("SET default_transaction_read_only = off")
            cur.execute(sql)
    finally:
        conn.close()


@pytest.mark.parametrize("sql", RAW_READS)
def test_reader_cannot_read_raw(api_warehouse, sql):
    with pytest.raises(psycopg2.errors.InsufficientPrivilege):
        _as_reader(api_warehouse, sql)


@pytest.mark.parametrize("sql", WRITES)
def test_reader_cannot_write_even_in_a_read_write_transaction(api_warehouse, sql):
    with pytest.raises(
        (psycopg2.errors.InsufficientPrivilege, psycopg2.errors.ReadOnlySqlTransaction)
    ):
        _as_reader(api_warehouse, sql)
    with pytest.raises(psycopg2.errors.InsufficientPrivilege):
        _as_reader(api_warehouse, sql, read_write=True)


def test_reader_reads_what_the_api_serves(api_warehouse, api_data):
    """Every row the API serves from, as many as the warehouse holds (api_data's)."""
    conn = psycopg2.connect(api_warehouse.reader_url)
    try:
        with conn.cursor() as cur:
            for table, count in api_data.row_counts().items():
                cur.execute(f"SELECT count(*) FROM {table}")
                assert cur.fetchone()[0] == count > 0, table
            cur.execute("SELECT count(*) FROM api.api_keys")
            assert cur.fetchone()[0] == scalar(
                api_warehouse.owner_url, "SELECT count(*) FROM api.api_keys"
            )
            cur.execute("SELECT current_user")
            assert cur.fetchone()[0] == "latam_api_reader"
    finally:
        conn.close()


def test_the_api_connects_as_the_reader(api_app):
    db = api_app.extensions["latam_api"].db
    assert db.fetch_one("SELECT current_user AS u")["u"] == "latam_api_reader"
    with pytest.raises(psycopg2.errors.InsufficientPrivilege):
        db.fetch_all("SELECT 1 FROM raw.passenger_events LIMIT 1")


# --- SQL injection ----------------------------------------------------------------------------

INJECTIONS = [
    "' OR '1'='1",
    "SCL' OR 1=1 --",
    "SCL'; DROP TABLE curated.fact_flight; --",
    "1; SELECT pg_sleep(3)",
    "') UNION SELECT passenger_ref FROM raw.passenger_events --",
    '" OR ""="',
    "%' OR flight_key LIKE '%",
    "\\'; DELETE FROM api.api_keys; --",
    "$$; DROP SCHEMA marts CASCADE; $$",
    "SCL\u02bc OR 1=1",
    "2026-11-27'::date OR TRUE --",
]
PARAMS = {
    "/api/v1/flights": [
        "flight_date",
        "origin",
        "destination",
        "carrier",
        "status",
        "limit",
        "cursor",
        "format",
    ],
    "/api/v1/routes/performance": [
        "date_from",
        "date_to",
        "origin",
        "destination",
        "carrier",
        "limit",
        "cursor",
    ],
    "/api/v1/airports/SCL/traffic": ["date_from", "date_to", "limit", "cursor"],
    "/api/v1/quality/history": ["check", "limit", "cursor"],
    "/api/v1/quality": ["limit", "cursor"],
}
PATHS = [
    "/api/v1/flights/{}",
    "/api/v1/flights/{}/events",
    "/api/v1/airports/{}",
    "/api/v1/airports/{}/traffic",
    "/api/v1/aircraft/{}/position",
]


def _counts(url: str) -> tuple:
    return tuple(
        scalar(url, f"SELECT count(*) FROM {t}")
        for t in ("curated.fact_flight", "marts.route_daily_performance", "api.api_keys")
    )


def test_injection_through_every_parameter_is_a_client_error(client, api_warehouse):
    from urllib.parse import quote

    before = _counts(api_warehouse.owner_url)
    for endpoint, names in PARAMS.items():
        for name in names:
            for attack in INJECTIONS:
                response = client.get(f"{endpoint}?{name}={quote(attack)}")
                assert response.status_code == 400, (endpoint, name, attack, response.data)
                assert response.content_type == PROBLEM
    for template in PATHS:
        for attack in INJECTIONS:
            response = client.get(template.format(quote(attack, safe="")))
            assert 400 <= response.status_code < 500, (template, attack, response.data)
            assert response.content_type == PROBLEM
    assert _counts(api_warehouse.owner_url) == before


def test_queries_are_parameterised_even_past_validation(api_warehouse):
    """Hostile values handed straight to the query builders find nothing and change nothing."""
    db = Database(api_warehouse.reader_url)
    before = _counts(api_warehouse.owner_url)
    try:
        for attack in INJECTIONS:
            text_args = {
                "origin": attack,
                "destination": attack,
                "carrier": attack,
                "status": attack,
            }
            assert db.fetch_all(*queries.flights(text_args, None, 10)) == []
            assert db.fetch_all(*queries.flights({}, ("2026-11-27", attack), 1)) is not None
            assert db.fetch_all(*queries.route_performance(text_args, None, 10)) == []
            assert db.fetch_all(*queries.flight(attack)) == []
            assert db.fetch_all(*queries.flight_events(attack, None, 10)) == []
            assert db.fetch_all(*queries.airport(attack)) == []
            assert db.fetch_all(*queries.airport_traffic(attack, {}, None, 10)) == []
            assert db.fetch_all(*queries.aircraft_position(attack)) == []
    finally:
        db.close()
    assert _counts(api_warehouse.owner_url) == before
