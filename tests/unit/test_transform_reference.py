"""The pandas reference itself, checked by hand against the semantics in docs/transformations.md.

The correctness tests trust the reference; these small cases show it says what the design says.
"""

from __future__ import annotations

from decimal import Decimal

import pandas as pd

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
