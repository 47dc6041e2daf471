"""CSV is rendered from the JSON values, so both formats carry the same data."""

import csv
import datetime as dt
import io
from decimal import Decimal

import orjson

from api_service.formats import dumps, to_csv

ROW = {
    "flight_key": "LA800-2026-11-27-SCL",
    "flight_date": dt.date(2026, 11, 27),
    "scheduled_departure": dt.datetime(2026, 11, 27, 15, 30, tzinfo=dt.UTC),
    "actual_departure": dt.datetime(2026, 11, 27, 15, 41, 5, 250000, tzinfo=dt.UTC),
    "dep_delay_min": Decimal("11.08"),
    "load_factor": Decimal("0.8125"),
    "cancelled": False,
    "on_time": None,
    "seat_capacity": 174,
    "note": 'comma, "quote"\nnewline',
    "statistics": {"unexpected_count": 2},
}


def test_json_timestamps_are_rfc3339_utc_and_decimals_numbers():
    data = orjson.loads(dumps(ROW))
    assert data["scheduled_departure"] == "2026-11-27T15:30:00Z"
    assert data["actual_departure"] == "2026-11-27T15:41:05.250000Z"
    assert data["flight_date"] == "2026-11-27"
    assert data["dep_delay_min"] == 11.08 and data["load_factor"] == 0.8125


def test_csv_cells_equal_json_values():
    columns = list(ROW)
    parsed = list(csv.DictReader(io.StringIO(to_csv(columns, [ROW]))))
    assert len(parsed) == 1
    cells, data = parsed[0], orjson.loads(dumps(ROW))
    assert list(cells) == columns
    assert cells["cancelled"] == "false" and cells["on_time"] == ""
    assert cells["seat_capacity"] == "174" and cells["dep_delay_min"] == "11.08"
    assert cells["note"] == ROW["note"]
    assert orjson.loads(cells["statistics"]) == data["statistics"]
    assert cells["actual_departure"] == data["actual_departure"]


def test_csv_of_no_rows_is_the_header():
    assert to_csv(["a", "b"], []) == "a,b\r\n"
