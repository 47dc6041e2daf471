"""Incremental behaviour of the curated layer: watermarks, touched dates, privacy, reference data,
and rows held back by the audit, withdrawn and published again as their events change."""

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
from tests import reference_impl
from tests.integration.ingest_helpers import make_flight_event, make_passenger_event
from tests.reference_impl import FACT_FLIGHT
from tests.transform_helpers import (
    chaos_events,
    fetch_rows,
    read_rejects,
    write_raw,
)

pytestmark = pytest.mark.integration
LA800 = "LA800-2026-11-27-SCL"


def _valid(event: dict) -> Valid:
    import orjson

    return Valid(
        event["event_type"],
        routing_key_for(event),
        orjson.dumps(event).decode(),
        event["message_id"],
    )


def _flight_keys(url: str, schema: str = "curated") -> set[str]:
    return {k for (k,) in fetch_rows(url, f"SELECT flight_key FROM {schema}.fact_flight")[1]}


def _held_unknown_airport(events: list[dict]) -> set[tuple[str, str, str]]:
    """What the audit must hold back of chaos events: the flights to the unknown airport."""
    ref = reference_impl.compute(events, get_settings().pii_hash_key.get_secret_value())
    assert ref.rejects, "the events should include a flight to the unknown airport"
    assert {rule for _, _, rule in ref.rejects} == {"flight_airports_known"}
    return ref.rejects


def test_rows_committed_out_of_order_are_not_skipped(warehouse):
    slow = make_flight_event(payload={"flight_number": 1})
    fast = make_flight_event(payload={"flight_number": 2})
    conn = connect(warehouse)
    try:
        RawWriter(conn).write_in_transaction([_valid(slow)])  # older transaction, still open
        write_raw(warehouse, [fast])  # younger transaction, committed first
        update_table(warehouse, "fact_flight")
        assert _flight_keys(warehouse) == {"LA2-2026-11-27-SCL"}
        conn.commit()
    finally:
        conn.close()
    update_table(warehouse, "fact_flight")
    both = {"LA1-2026-11-27-SCL", "LA2-2026-11-27-SCL"}
    assert _flight_keys(warehouse, "staging") == _flight_keys(warehouse) == both


def test_a_run_without_changes_touches_nothing(warehouse):
    events = chaos_events(seed=3, flights=10)
    write_raw(warehouse, events)
    update_all(warehouse)
    refresh_pending(warehouse)
    held = read_rejects(warehouse)
    assert held == _held_unknown_airport(events)
    # redelivered messages and an older position report change no row and no partition
    position = next(e for e in events if e["event_type"] == "position_report")
    stale = copy.deepcopy(position)
    stale["message_id"] = "00000000-0000-4000-8000-000000000001"
    stale["event_time"] = "2001-01-01T00:00:00Z"
    write_raw(warehouse, [*events[:50], stale])
    results = update_all(warehouse)
    assert [r.changed_rows for r in results] == [0, 0, 0, 0]
    assert [(r.audit.published, r.audit.withdrawn) for r in results if r.audit] == [(0, 0)] * 3
    assert read_rejects(warehouse) == held
    assert pending_dates_at(warehouse) == {}


def test_a_flight_held_back_and_scanned_again_unchanged_touches_no_partition(warehouse):
    """A transaction still open keeps the watermark behind, so the next run scans the same events
    again: a held-back flight they leave unchanged stays held, and its date must not turn pending."""
    events = chaos_events(seed=3, flights=10)
    pin = connect(warehouse)  # an open transaction with an id: the horizon stays behind it
    try:
        with pin.cursor() as cur:
            cur.execute("SELECT pg_current_xact_id()")
        write_raw(warehouse, events)
        update_all(warehouse)
        refresh_pending(warehouse)
        held = read_rejects(warehouse)
        assert held == _held_unknown_airport(events)
        results = update_all(warehouse)
    finally:
        pin.rollback()
        pin.close()
    assert [r.changed_rows for r in results] == [0, 0, 0, 0]
    assert [(r.audit.published, r.audit.withdrawn) for r in results if r.audit] == [(0, 0)] * 3
    assert read_rejects(warehouse) == held
    # audited again, unchanged and still held back: no mart partition becomes pending
    assert pending_dates_at(warehouse) == {}


def test_a_late_event_for_an_old_date_makes_only_that_partition_pending(warehouse):
    events = chaos_events(seed=5, flights=15)
    write_raw(warehouse, events)
    update_all(warehouse)
    refresh_pending(warehouse)
    assert read_rejects(warehouse) == _held_unknown_airport(events)
    late = make_flight_event(
        event_time="2021-03-05T01:00:00Z",
        payload={"flight_date": "2021-03-04", "status": "cancelled", "flight_number": 77},
    )
    write_raw(warehouse, [late])
    update_all(warehouse)
    assert set(pending_dates_at(warehouse)) == {date(2021, 3, 4)}
    [route, traffic] = refresh_pending(warehouse)
    assert (route.start, route.end, route.dates_refreshed) == (date(2021, 3, 4),) * 2 + (1,)
    _, rows = fetch_rows(
        warehouse,
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
        " WHERE table_schema IN ('staging', 'curated', 'marts', 'quality')",
    )[1]
    for (table,) in tables:
        _, rows = fetch_rows(warehouse_url, f"SELECT t::text FROM {table} AS t")
        text = "\n".join(r[0] for r in rows)
        assert not any(ref in text for ref in refs), table
    secret = get_settings().pii_hash_key.get_secret_value().encode()
    expected = {hmac.new(secret, r.encode(), hashlib.sha256).hexdigest() for r in refs}
    hashes = fetch_rows(warehouse_url, "SELECT passenger_hash FROM curated.flight_passenger")[1]
    assert {h for (h,) in hashes} == expected


def test_loading_airports_later_fills_in_distances_and_publishes_held_flights(warehouse_url):
    write_raw(warehouse_url, [make_flight_event()])
    update_all(warehouse_url)
    # without dim_airport the flight is computed, but held back: its airports are unknown
    _, staged = fetch_rows(warehouse_url, "SELECT distance_km FROM staging.fact_flight")
    assert staged == [(None,)]
    assert _flight_keys(warehouse_url) == set()
    assert read_rejects(warehouse_url) == {(FACT_FLIGHT, LA800, "flight_airports_known")}
    load_dim_airport(warehouse_url)
    result = update_table(warehouse_url, "fact_flight")
    assert result.changed_rows == 1
    assert (result.audit.published, result.audit.held) == (1, 0)
    [(km,)] = fetch_rows(warehouse_url, "SELECT distance_km FROM curated.fact_flight")[1]
    assert 2400 < km < 2500  # Santiago - Lima
    assert read_rejects(warehouse_url) == set()
    # reloading unchanged reference data recomputes nothing
    assert load_dim_airport(warehouse_url).changed_rows == 0
    again = update_table(warehouse_url, "fact_flight")
    assert (again.changed_rows, again.audit.audited, again.dates_touched) == (0, 0, 0)


def test_a_flight_is_withdrawn_when_an_event_breaks_a_rule_and_published_once_corrected(
    warehouse,
):
    boarded = [make_passenger_event(payload={"action": "boarded"}) for _ in range(3)]
    write_raw(warehouse, [make_flight_event(), *boarded])
    update_all(warehouse)
    refresh_pending(warehouse)
    route = "SELECT flights, passengers_boarded FROM marts.route_daily_performance"
    assert fetch_rows(warehouse, route)[1] == [(1, 3)]
    # a take-off reported 50 hours late: the flight leaves curated and the marts
    late = make_flight_event(
        event_time="2026-11-27T13:00:00-03:00",
        payload={"status": "departed", "actual_departure": "2026-11-29T14:30:00-03:00"},
    )
    write_raw(warehouse, [late])
    [flights, *_] = update_all(warehouse)
    assert (flights.audit.held, flights.audit.withdrawn) == (1, 1)
    assert _flight_keys(warehouse, "staging") == {LA800}
    assert _flight_keys(warehouse) == set()
    assert read_rejects(warehouse) == {(FACT_FLIGHT, LA800, "flight_delays_plausible")}
    assert set(pending_dates_at(warehouse)) == {date(2026, 11, 27)}
    refresh_pending(warehouse)
    assert fetch_rows(warehouse, route)[1] == []
    # the correction publishes it again, and the reject is forgotten
    fix = make_flight_event(
        event_time="2026-11-27T13:05:00-03:00",
        payload={"status": "departed", "actual_departure": "2026-11-27T12:45:00-03:00"},
    )
    write_raw(warehouse, [fix])
    update_all(warehouse)
    refresh_pending(warehouse)
    _, rows = fetch_rows(warehouse, "SELECT status, dep_delay_min FROM curated.fact_flight")
    assert rows == [("departed", 15)]
    assert read_rejects(warehouse) == set()
    assert fetch_rows(warehouse, route)[1] == [(1, 3)]


def test_rows_already_held_back_do_not_count_again_toward_the_reject_share(warehouse, monkeypatch):
    """The reject share guards against a batch of new bad data: flights held back long ago that
    simply receive their next status must not block the warehouse."""
    monkeypatch.setenv("LATAM_QUALITY_REJECT_MIN_ROWS", "3")

    def statuses(status: str, at: str) -> list[dict]:
        return [  # 30 flights, 3 of them to an airport dim_airport lacks
            make_flight_event(
                event_time=at,
                payload={"flight_number": n, "status": status}
                | {"destination": "QQQ" if n % 10 == 0 else "LIM"},
            )
            for n in range(1, 31)
        ]

    scheduled = statuses("scheduled", "2026-11-27T08:00:00-03:00")
    for i in range(0, 30, 8):  # a few flights a batch: one held back at most
        write_raw(warehouse, scheduled[i : i + 8])
        update_all(warehouse)
    assert len(read_rejects(warehouse)) == 3
    # every flight again: the three held back are audited again but are not new rejects
    write_raw(warehouse, statuses("boarding", "2026-11-27T11:00:00-03:00"))
    update_all(warehouse)
    assert len(read_rejects(warehouse)) == 3
    assert len(_flight_keys(warehouse)) == 27


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
