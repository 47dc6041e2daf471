"""Incremental behaviour of the curated layer: watermarks, touched dates, privacy, reference data."""

from __future__ import annotations

import copy
import hashlib
import hmac
from datetime import date

import pytest

from latam_dagster.db import connect
from latam_dagster.ingest.topology import routing_key_for
from latam_dagster.ingest.writer import RawWriter, Valid
from latam_dagster.settings import get_settings
from latam_dagster.transform.airports import load_dim_airport
from latam_dagster.transform.curated import update_all, update_table
from latam_dagster.transform.marts import pending_dates_at, refresh_pending
from tests.integration.ingest_helpers import make_flight_event, make_passenger_event
from tests.transform_helpers import chaos_events, fetch_rows, write_raw

pytestmark = pytest.mark.integration


def _valid(event: dict) -> Valid:
    import orjson

    return Valid(
        event["event_type"],
        routing_key_for(event),
        orjson.dumps(event).decode(),
        event["message_id"],
    )


def _flight_keys(url: str) -> set[str]:
    return {k for (k,) in fetch_rows(url, "SELECT flight_key FROM curated.fact_flight")[1]}


def test_rows_committed_out_of_order_are_not_skipped(warehouse_url):
    slow = make_flight_event(payload={"flight_number": 1})
    fast = make_flight_event(payload={"flight_number": 2})
    conn = connect(warehouse_url)
    try:
        RawWriter(conn).write_in_transaction([_valid(slow)])  # older transaction, still open
        write_raw(warehouse_url, [fast])  # younger transaction, committed first
        update_table(warehouse_url, "fact_flight")
        assert _flight_keys(warehouse_url) == {"LA2-2026-11-27-SCL"}
        conn.commit()
    finally:
        conn.close()
    update_table(warehouse_url, "fact_flight")
    assert _flight_keys(warehouse_url) == {"LA1-2026-11-27-SCL", "LA2-2026-11-27-SCL"}


def test_a_run_without_changes_touches_nothing(warehouse_url):
    events = chaos_events(seed=3, flights=10)
    write_raw(warehouse_url, events)
    update_all(warehouse_url)
    refresh_pending(warehouse_url)
    # redelivered messages and an older position report change no row and no partition
    position = next(e for e in events if e["event_type"] == "position_report")
    stale = copy.deepcopy(position)
    stale["message_id"] = "00000000-0000-4000-8000-000000000001"
    stale["event_time"] = "2001-01-01T00:00:00Z"
    write_raw(warehouse_url, [*events[:50], stale])
    results = update_all(warehouse_url)
    assert [r.changed_rows for r in results] == [0, 0, 0, 0]
    assert pending_dates_at(warehouse_url) == {}


def test_a_late_event_for_an_old_date_makes_only_that_partition_pending(warehouse_url):
    write_raw(warehouse_url, chaos_events(seed=5, flights=15))
    update_all(warehouse_url)
    refresh_pending(warehouse_url)
    late = make_flight_event(
        event_time="2021-03-05T01:00:00Z",
        payload={"flight_date": "2021-03-04", "status": "cancelled", "flight_number": 77},
    )
    write_raw(warehouse_url, [late])
    update_all(warehouse_url)
    assert set(pending_dates_at(warehouse_url)) == {date(2021, 3, 4)}
    [route, traffic] = refresh_pending(warehouse_url)
    assert (route.start, route.end, route.dates_refreshed) == (date(2021, 3, 4),) * 2 + (1,)
    _, rows = fetch_rows(
        warehouse_url,
        "SELECT flights, cancelled FROM marts.route_daily_performance"
        " WHERE flight_date = '2021-03-04' AND carrier = 'LA' AND origin = 'SCL'",
    )
    assert rows == [(1, 1)]


def test_passenger_refs_only_appear_as_keyed_hashes(warehouse_url, monkeypatch):
    events = [make_passenger_event() for _ in range(5)]
    refs = [e["payload"]["passenger_ref"] for e in events]
    write_raw(warehouse_url, events)
    update_all(warehouse_url)
    refresh_pending(warehouse_url)
    tables = fetch_rows(
        warehouse_url,
        "SELECT table_schema || '.' || table_name FROM information_schema.tables"
        " WHERE table_schema IN ('curated', 'marts')",
    )[1]
    for (table,) in tables:
        _, rows = fetch_rows(warehouse_url, f"SELECT t::text FROM {table} AS t")
        text = "\n".join(r[0] for r in rows)
        assert not any(ref in text for ref in refs), table
    secret = get_settings().pii_hash_key.encode()
    expected = {hmac.new(secret, r.encode(), hashlib.sha256).hexdigest() for r in refs}
    hashes = fetch_rows(warehouse_url, "SELECT passenger_hash FROM curated.flight_passenger")[1]
    assert {h for (h,) in hashes} == expected


def test_loading_airports_later_fills_in_distances(warehouse_url):
    write_raw(warehouse_url, [make_flight_event()])
    update_all(warehouse_url)
    assert fetch_rows(warehouse_url, "SELECT distance_km FROM curated.fact_flight")[1] == [(None,)]
    load_dim_airport(warehouse_url)
    result = update_table(warehouse_url, "fact_flight")
    assert result.changed_rows == 1
    [(km,)] = fetch_rows(warehouse_url, "SELECT distance_km FROM curated.fact_flight")[1]
    assert 2400 < km < 2500  # Santiago - Lima
    # reloading unchanged reference data recomputes nothing
    assert load_dim_airport(warehouse_url).changed_rows == 0
    assert update_table(warehouse_url, "fact_flight").in_scope == 0


def test_flight_event_history_lists_a_flights_events_in_order(warehouse_url):
    from latam_dagster.assets.curated import apply_flight_event_history

    apply_flight_event_history(warehouse_url)
    second = make_flight_event(
        event_time="2026-11-27T11:00:00-03:00", payload={"status": "boarding"}
    )
    first = make_flight_event(
        event_time="2026-11-27T09:00:00-03:00", payload={"status": "scheduled"}
    )
    write_raw(warehouse_url, [second, first])
    cols, rows = fetch_rows(
        warehouse_url,
        "SELECT event_seq, status FROM curated.flight_event_history"
        " WHERE flight_key = 'LA800-2026-11-27-SCL' ORDER BY event_seq",
    )
    assert rows == [(1, "scheduled"), (2, "boarding")]
    cols, _ = fetch_rows(warehouse_url, "SELECT * FROM curated.flight_event_history LIMIT 0")
    assert not any("passenger" in c for c in cols)
