"""Each process's database role has what the process needs and nothing more (migration 0033).

The warehouse of this module is made the way `latam init` makes one: migrated from nothing (not
cloned from the session template: database privileges such as TEMPORARY live in the server's
catalog, and a clone starts with the defaults again), then the pipeline defines its view.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg2
import psycopg2.errors
import pytest

from api_service.config import READ_ONLY_ROLE
from latam_dagster.db import migrate
from latam_dagster.ingest.topology import Topology
from latam_dagster.observability.families import Families
from latam_dagster.observability.warehouse import WarehouseCollector
from latam_dagster.settings import EXPORTER_ROLE, PIPELINE_ROLE, role_url
from tests.conftest import RUN_ID, _db_url, drop_database, query
from tests.integration.ingest_helpers import make_flight_event, make_passenger_event

API_SERVES = {
    "curated.fact_flight",
    "curated.flight_passenger_load",
    "curated.flight_event_history",
    "curated.dim_airport",
    "curated.aircraft_position_latest",
    "marts.route_daily_performance",
    "marts.airport_daily_traffic",
    "quality.latest_check_result",
    "quality.check_evaluation",
    "quality.rejects",
    "quality.audit_batch",
}
# read by column: the key columns the API checks, the applied migration versions
API_READS_COLUMNS_OF = {"api.api_keys", "public.schema_migrations"}
SCHEMAS = ["raw", "staging", "curated", "marts", "quality", "api", "public"]
OWNER = "SELECT relowner::regrole::text FROM pg_class WHERE oid = %s::regclass"


@pytest.fixture(scope="module")
def warehouse() -> Iterator[str]:
    from latam_dagster.assets.curated import apply_flight_event_history

    name = f"latam_lp_{RUN_ID}_{uuid.uuid4().hex[:8]}"
    url = _db_url(name)
    migrate(url)
    apply_flight_event_history(role_url(url, PIPELINE_ROLE))
    yield url
    drop_database(name)


def _run(url: str, role: str, *statements: str, read_write: bool = True) -> list[tuple]:
    """Run `statements` as `role` in one transaction (BEGIN READ WRITE unless told otherwise),
    rolled back at the end; returns the last statement's rows."""
    conn = psycopg2.connect(role_url(url, role))
    conn.autocommit = True
    rows: list[tuple] = []
    try:
        with conn.cursor() as cur:
            cur.execute("BEGIN READ WRITE" if read_write else "BEGIN")
            try:
                for sql in statements:
                    cur.execute(sql)
                    rows = cur.fetchall() if cur.description else []
            finally:
                cur.execute("ROLLBACK")
    finally:
        conn.close()
    return rows


def _refused(url: str, role: str, *statements: str) -> None:
    """Each of `statements`, run as `role` in a transaction of its own, is refused for want of a
    privilege."""
    for sql in statements:
        with pytest.raises(psycopg2.errors.InsufficientPrivilege):
            _run(url, role, sql)


def _readable(url: str, role: str) -> set[str]:
    """Relations of the warehouse's schemas of which `role` may read at least one column."""
    rows = query(
        url,
        """SELECT n.nspname || '.' || c.relname FROM pg_class AS c
           JOIN pg_namespace AS n ON n.oid = c.relnamespace
           WHERE n.nspname = ANY(%s) AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
             AND has_any_column_privilege(%s, c.oid, 'SELECT')""",
        (SCHEMAS, role),
    )
    return {name for (name,) in rows}


def test_the_api_role_reads_exactly_the_relations_the_api_serves(warehouse):
    from latam_dagster.tables import REGISTRY

    # a table the registry declares for the API needs its grant in a migration
    assert {t.qualified for t in REGISTRY if t.api_name or t.endpoint} <= API_SERVES
    assert _readable(warehouse, READ_ONLY_ROLE) == API_SERVES | API_READS_COLUMNS_OF
    whole_table = "SELECT has_table_privilege(%s, %s, 'SELECT')"
    for relation in API_READS_COLUMNS_OF:  # some columns only, not the table
        assert query(warehouse, whole_table, (READ_ONLY_ROLE, relation)) == [(False,)]


@pytest.mark.parametrize(
    "relation",
    [
        "curated.flight_passenger",
        "curated.pii_key_fingerprint",
        "raw.passenger_events",
        "raw.flight_events",
        "raw.quarantine",
        "staging.fact_flight",
        "staging.flight_passenger_load",
    ],
)
def test_the_api_role_cannot_read_personal_raw_or_unaudited_data(warehouse, relation):
    _refused(warehouse, READ_ONLY_ROLE, f"SELECT * FROM {relation} LIMIT 1")


WRITES = [
    "INSERT INTO curated.dim_airport (iata, name, latitude, longitude) VALUES ('ZZZ', 'x', 0, 0)",
    "UPDATE curated.fact_flight SET status = 'cancelled'",
    "DELETE FROM quality.rejects",
    "TRUNCATE marts.route_daily_performance",
    "UPDATE api.api_keys SET revoked_at = NULL",
    "INSERT INTO public.schema_migrations (version, name, checksum) VALUES (9999, 'x', 'x')",
]
# a temporary table or function is a place to keep or run what the grants do not allow
CREATES = [
    "CREATE TEMP TABLE scratch (x int)",
    "CREATE TEMP VIEW scratch AS SELECT 1 AS x",
    "CREATE FUNCTION pg_temp.scratch() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    "CREATE FUNCTION public.scratch() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    "CREATE FUNCTION curated.scratch() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    "CREATE TABLE public.scratch (x int)",
    "CREATE TABLE marts.scratch (x int)",
]


@pytest.mark.parametrize("role", [READ_ONLY_ROLE, EXPORTER_ROLE])
@pytest.mark.parametrize("sql", WRITES + CREATES)
def test_read_only_roles_cannot_write_or_create_even_in_a_read_write_transaction(
    warehouse, role, sql
):
    _refused(warehouse, role, sql)


@pytest.mark.parametrize(("role", "timeout"), [(READ_ONLY_ROLE, "10s"), (EXPORTER_ROLE, "1min")])
def test_read_only_roles_default_to_read_only_transactions_with_a_timeout(warehouse, role, timeout):
    shown = _run(
        warehouse,
        role,
        "SELECT current_setting('default_transaction_read_only'), "
        "current_setting('statement_timeout')",
        read_write=False,
    )
    assert shown == [("on", timeout)]
    with pytest.raises(psycopg2.errors.ReadOnlySqlTransaction):
        _run(warehouse, role, "CREATE TEMP TABLE scratch (x int)", read_write=False)


def test_the_exporter_reads_what_it_measures_and_no_personal_data(warehouse):
    exporter = role_url(warehouse, EXPORTER_ROLE)
    collector = WarehouseCollector(exporter, Topology(prefix=f"t{uuid.uuid4().hex[:10]}"))
    out = Families()
    try:
        collector.collect(out)
    finally:
        collector.close()
    counted = {
        sample.labels["table"]
        for metric in out.metrics()
        if metric.name == "latam_table_rows"
        for sample in metric.samples
    }
    # counted through the columns it may read
    assert {"raw.passenger_events", "raw.quarantine", "curated.flight_passenger"} <= counted
    assert "curated.pii_key_fingerprint" not in counted  # not granted: left out, no failure
    _refused(
        warehouse,
        EXPORTER_ROLE,
        "SELECT passenger_ref FROM raw.passenger_events",
        "SELECT payload FROM raw.flight_events",
        "SELECT body FROM raw.quarantine",
        "SELECT passenger_hash FROM curated.flight_passenger",
        "SELECT * FROM staging.fact_flight",
        "SELECT key_hash FROM api.api_keys",
    )


def test_the_pipeline_role_runs_the_transforms_and_changes_no_schema(warehouse, monkeypatch):
    from latam_dagster.assets.curated import apply_flight_event_history
    from latam_dagster.transform.curated import update_all
    from latam_dagster.transform.marts import refresh_pending
    from tests.transform_helpers import write_raw

    monkeypatch.setenv("LATAM_PII_HASH_KEY", "least-privilege-test-key")
    pipeline = role_url(warehouse, PIPELINE_ROLE)
    write_raw(pipeline, [make_flight_event(), make_passenger_event(), make_passenger_event()])
    update_all(pipeline)
    refresh_pending(pipeline)
    apply_flight_event_history(pipeline)
    assert query(warehouse, "SELECT count(*) FROM curated.flight_passenger") == [(2,)]
    assert query(warehouse, "SELECT count(*) FROM curated.flight_event_history") == [(1,)]
    assert query(warehouse, OWNER, ("curated.flight_event_history",)) == [(PIPELINE_ROLE,)]
    _refused(
        warehouse,
        PIPELINE_ROLE,
        "CREATE TABLE marts.scratch (x int)",
        "CREATE TABLE raw.scratch (x int)",
        "CREATE FUNCTION public.scratch() RETURNS int LANGUAGE sql AS 'SELECT 1'",
        "ALTER TABLE curated.fact_flight ADD COLUMN scratch int",
        "DROP TABLE curated.fact_flight",
        "UPDATE curated.pii_key_fingerprint SET fingerprint = repeat('0', 64)",
        "DELETE FROM curated.pii_key_fingerprint",
        "SELECT key_hash FROM api.api_keys",
        "DELETE FROM public.schema_migrations",
    )


def test_an_upgraded_warehouse_narrows_the_api_and_hands_the_view_to_the_pipeline(empty_db_url):
    """A warehouse from before the roles: the owner made the view and the API read all curated."""
    from latam_dagster import db
    from latam_dagster.assets.curated import apply_flight_event_history

    every = db.load_migrations()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(db, "load_migrations", lambda: [m for m in every if m.version < 32])
        db.migrate(empty_db_url)
    apply_flight_event_history(empty_db_url)
    assert "curated.flight_passenger" in _readable(empty_db_url, READ_ONLY_ROLE)
    db.migrate(empty_db_url)
    assert _readable(empty_db_url, READ_ONLY_ROLE) == API_SERVES | API_READS_COLUMNS_OF
    assert query(empty_db_url, OWNER, ("curated.flight_event_history",)) == [(PIPELINE_ROLE,)]
    apply_flight_event_history(role_url(empty_db_url, PIPELINE_ROLE))  # the pipeline redefines it
    assert _run(empty_db_url, READ_ONLY_ROLE, "SELECT count(*) FROM curated.flight_event_history")
