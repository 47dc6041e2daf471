"""The pandas reference itself, checked by hand against the semantics in docs/transformations.md.

The correctness tests trust the reference; these small cases show it says what the design says,
including which rows the audit holds back and how the marts then count them.
"""

from __future__ import annotations

from decimal import Decimal

import pandas as pd

from latam_dagster.tables.limits import AIRPORT_CODE
from tests import reference_impl

KEY = {"carrier": "LA", "flight_number": 800, "flight_date": "2026-11-27", "origin": "SCL"}


def flight(mid: str, time: str, status: str, **fields) -> dict:
    return {
        "message_id": mid,
        "schema_version": 1,
        "event_type": "flight_status",
        "event_time": time,
        "source_system": "ops",
        "payload": {**KEY, "destination": "LIM", "status": status, **fields},
    }


def passenger(mid: str, time: str, ref: str, action: str) -> dict:
    return {
        "message_id": mid,
        "schema_version": 1,
        "event_type": "passenger_event",
        "event_time": time,
        "source_system": "res",
        "payload": {**KEY, "passenger_ref": ref, "action": action},
    }


def uid(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


def test_each_field_comes_from_the_latest_event_that_carries_it():
    events = [
        flight(
            uid(1),
            "2026-11-27T08:00:00-03:00",
            "scheduled",
            tail_number="CC-AAA",
            seat_capacity=174,
            scheduled_arrival="2026-11-27T14:00:00-05:00",
        ),
        flight(
            uid(2),
            "2026-11-27T12:00:00-03:00",
            "departed",
            tail_number=None,
            actual_departure="2026-11-27T12:40:00-03:00",
            scheduled_departure="2026-11-27T12:30:00-03:00",
        ),
        flight(uid(3), "2026-11-27T10:00:00-03:00", "boarding", tail_number="CC-BBB"),
        # same instant as uid(2), larger message id: it wins the tie
        flight(
            uid(4), "2026-11-27T15:00:00Z", "arrived", actual_arrival="2026-11-27T14:14:59-05:00"
        ),
        flight(uid(4), "2026-11-27T15:00:00Z", "cancelled"),  # duplicate message id: ignored
    ]
    [row] = reference_impl.fact_flight(events).to_dict("records")
    assert row["status"] == "arrived"
    assert row["tail_number"] == "CC-BBB"  # the null of uid(2) does not erase it
    assert row["seat_capacity"] == 174
    assert row["dep_delay_min"] == Decimal("10.00")
    assert row["arr_delay_min"] == Decimal("14.98")
    assert row["on_time"] is True and row["arrived"] and not row["cancelled"]
    assert row["event_count"] == 4
    assert row["last_event_time"] == pd.Timestamp("2026-11-27T15:00:00Z")


def test_a_passenger_counts_by_their_latest_action():
    events = [
        flight(uid(1), "2026-11-27T08:00:00Z", "scheduled", seat_capacity=4),
        passenger(uid(10), "2026-11-20T08:00:00Z", "A", "booked"),
        passenger(uid(11), "2026-11-27T08:00:00Z", "A", "boarded"),
        passenger(uid(12), "2026-11-20T08:00:00Z", "B", "booked"),
        passenger(uid(13), "2026-11-26T08:00:00Z", "B", "checked_in"),
        passenger(uid(14), "2026-11-21T08:00:00Z", "C", "booked"),
        passenger(uid(15), "2026-11-22T08:00:00Z", "C", "cancelled"),
    ]
    flights = reference_impl.fact_flight(events)
    pax = reference_impl.flight_passenger(events, "secret")
    [load] = reference_impl.flight_passenger_load(flights, pax).to_dict("records")
    assert (load["passengers_booked"], load["passengers_checked_in"]) == (2, 2)
    assert (load["passengers_boarded"], load["passengers_cancelled"]) == (1, 1)
    assert load["load_factor"] == Decimal("0.2500")
    assert "A" not in set(pax["passenger_hash"])


def test_row_rules_read_values_as_great_expectations_does():
    """Missing values pass; bounds are inclusive unless strict; a pair with a missing value
    passes; `$` ends the text, as in Postgres."""
    r = reference_impl
    delays = pd.Series([None, float("nan"), -180, 2880, Decimal("2880.01"), -180.5])
    assert r.outside(delays, -180, 2880).tolist() == [0, 0, 0, 0, 1, 1]
    headings = pd.Series([0.0, 359.9, 360.0, None])
    assert r.outside(headings, 0, 360, strict_max=True).tolist() == [0, 0, 1, 0]
    codes = pd.Series(["SCL", "SCL\n", "scl", None])
    assert r.mismatches(codes, AIRPORT_CODE).tolist() == [0, 1, 1, 0]
    a, b = pd.Series([2, 1, 1, None, 3]), pd.Series([1, 1, 2, 5, None])
    assert r.not_greater(a, b).tolist() == [0, 1, 1, 0, 0]
    assert r.not_greater(a, b, or_equal=True).tolist() == [0, 0, 1, 0, 0]


def test_held_back_rows_leave_the_published_frames_and_the_marts():
    """A flight held back is absent from the marts; a load held back leaves its flight counted,
    without its passengers and load factor."""

    def boarded(mid: int, number: int) -> dict:
        event = passenger(uid(mid), "2026-11-26T08:00:00Z", f"P{mid}", "boarded")
        event["payload"]["flight_number"] = number
        return event

    events = [
        flight(uid(1), "2026-11-27T08:00:00Z", "scheduled", seat_capacity=2),
        flight(uid(2), "2026-11-27T08:00:00Z", "scheduled", flight_number=801, seat_capacity=174),
        flight(uid(3), "2026-11-27T08:00:00Z", "scheduled", flight_number=802, destination="QQQ"),
        *(boarded(10 + n, 800) for n in range(3)),  # 3 aboard 2 seats
        boarded(20, 801),
        boarded(21, 802),
    ]
    ref = reference_impl.compute(events, "secret")
    assert ref.rejects == {
        (reference_impl.FACT_FLIGHT, "LA802-2026-11-27-SCL", "flight_airports_known"),
        (reference_impl.PASSENGER_LOAD, "LA800-2026-11-27-SCL", "load_factor_plausible"),
    }
    assert len(ref.fact_flight) == len(ref.flight_passenger_load) == 3
    assert set(ref.published_fact_flight["flight_key"]) == {
        "LA800-2026-11-27-SCL",
        "LA801-2026-11-27-SCL",
    }
    assert set(ref.published_flight_passenger_load["flight_key"]) == {
        "LA801-2026-11-27-SCL",
        "LA802-2026-11-27-SCL",
    }
    [route] = ref.route_daily_performance.to_dict("records")
    assert (route["destination"], route["flights"], route["passengers_boarded"]) == ("LIM", 2, 1)
    assert route["avg_load_factor"] == Decimal("0.0057")  # LA801's 1 of 174 seats
    assert "QQQ" not in set(ref.airport_daily_traffic["airport"])
