"""The event contract v1: `validate_body` on good and bad bytes, and the
JSON Schema files themselves. No services needed."""

from __future__ import annotations

import json
from importlib import resources

import jsonschema
import pytest

from latam_dagster.contracts import (
    EVENT_TYPES,
    InvalidEvent,
    ValidEvent,
    load_schema,
    validate_body,
    validate_event,
)
from latam_dagster.contracts.validator import ENVELOPE_FIELDS, MAX_REASON_CHARS
from tests.integration.ingest_helpers import (
    BAD_CASES,
    DROP,
    MAKERS,
    TWO_MB,
    dumps,
    make_flight_event,
    make_passenger_event,
    make_position_event,
)
from tests.reference_impl import FLIGHT_FIELDS

LIMIT = 1024 * 1024  # the default LATAM_MAX_MESSAGE_BYTES

OPTIONAL_FIELDS = {
    # a flight's optional fields are the ones the reference keeps the latest known value of
    "flight_status": FLIGHT_FIELDS,
    "passenger_event": ("cabin", "fare_amount", "currency"),
    "position_report": (
        "altitude_ft",
        "ground_speed_kt",
        "heading_deg",
        "carrier",
        "flight_number",
        "flight_date",
        "origin",
    ),
}


def _valid(body: bytes, limit: int = LIMIT) -> ValidEvent:
    outcome = validate_body(body, limit)
    assert isinstance(outcome, ValidEvent), f"expected valid, got {outcome!r}"
    return outcome


def _invalid(body: bytes, limit: int = LIMIT) -> InvalidEvent:
    outcome = validate_body(body, limit)
    assert isinstance(outcome, InvalidEvent), f"expected invalid, got {outcome!r}"
    assert outcome.reason.strip(), "an invalid event needs a reason"
    assert len(outcome.reason) <= MAX_REASON_CHARS
    return outcome


# --- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize("case", BAD_CASES, ids=lambda c: c.id)
def test_bad_input_is_invalid_with_a_clear_reason(case):
    outcome = _invalid(case.body)
    assert case.reason_ok(outcome.reason), (
        f"reason {outcome.reason!r} should mention {case.reason_parts}"
    )


def test_reason_carries_the_message_id_when_there_is_one():
    event = make_flight_event(payload={"flight_number": "800"})
    assert _invalid(dumps(event)).message_id == event["message_id"]
    assert _invalid(b"not json").message_id is None
    assert _invalid(dumps(make_flight_event(message_id=12345))).message_id is None


@pytest.mark.parametrize(
    "value",
    ["2026-11-27 10:15:00 -03:00", "27/11/2026 10:15", "2026-11-27T25:00:00Z", "2026-11-27T10:15Z"],
)
def test_other_malformed_event_times_are_invalid(value):
    assert "event_time" in _invalid(dumps(make_flight_event(event_time=value))).reason


@pytest.mark.parametrize(
    ("maker", "payload", "field"),
    [
        (make_flight_event, {"flight_number": 0}, "flight_number"),
        (make_flight_event, {"flight_number": 10000}, "flight_number"),
        (make_flight_event, {"carrier": "la"}, "carrier"),
        (make_flight_event, {"origin": "SC"}, "origin"),
        (make_flight_event, {"seat_capacity": -1}, "seat_capacity"),
        (make_flight_event, {"flight_date": "27-11-2026"}, "flight_date"),
        (make_passenger_event, {"fare_amount": -0.01}, "fare_amount"),
        (make_passenger_event, {"cabin": "first"}, "cabin"),
        (make_passenger_event, {"currency": "usd"}, "currency"),
        (make_passenger_event, {"passenger_ref": ""}, "passenger_ref"),
        (make_position_event, {"latitude": -90.0001}, "latitude"),
        (make_position_event, {"longitude": 180.5}, "longitude"),
        (make_position_event, {"ground_speed_kt": -1}, "ground_speed_kt"),
        (make_position_event, {"heading_deg": -0.5}, "heading_deg"),
        (make_position_event, {"latitude": "-33.4"}, "latitude"),
        (make_position_event, {"latitude": DROP}, "latitude"),
    ],
)
def test_out_of_range_or_wrong_type_payload_fields_are_invalid(maker, payload, field):
    assert field in _invalid(dumps(maker(payload=payload))).reason


def test_each_event_type_is_checked_against_its_own_schema():
    # a passenger payload under the flight_status event type misses flight fields
    event = make_passenger_event(event_type="flight_status")
    reason = _invalid(dumps(event)).reason
    assert reason.startswith("flight_status v1")


def test_nul_anywhere_is_invalid_but_an_escaped_backslash_u_is_not():
    nested = make_flight_event(payload={"tail_number": "CC-BGA"})
    nested["payload"]["extra"] = {"notes": ["ok", "bad\u0000"]}
    assert "NUL" in _invalid(dumps(nested)).reason
    passenger = make_passenger_event(payload={"passenger_ref": "\u0000PNR"})
    assert "NUL" in _invalid(dumps(passenger)).reason
    # the six characters \u0000 (a literal backslash) are a harmless string, not a NUL
    literal = make_flight_event(payload={"tail_number": "CC\\u0000"})
    assert "\\\\u0000" in dumps(literal).decode()
    _valid(dumps(literal))


def test_body_size_limit_is_inclusive():
    body = dumps(make_flight_event())
    _valid(body, limit=len(body))
    assert "too large" in _invalid(body, limit=len(body) - 1).reason


def test_two_megabyte_body_is_rejected_before_parsing():
    case = next(c for c in BAD_CASES if c.id == "two_megabytes")
    assert len(case.body) > TWO_MB
    reason = _invalid(case.body).reason
    assert str(len(case.body)) in reason and str(LIMIT) in reason


def test_validate_event_rejects_non_objects_without_a_message_id():
    for value in ([], "x", 1, None, 1.5, True):
        outcome = validate_event(value)
        assert isinstance(outcome, InvalidEvent)
        assert "not an object" in outcome.reason
        assert outcome.message_id is None


# --- good input ----------------------------------------------------------------------------------


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_valid_example_of_each_event_type_passes(event_type):
    event = MAKERS[event_type]()
    outcome = _valid(dumps(event))
    assert outcome.doc == event
    assert outcome.event_type == event_type
    assert outcome.message_id == event["message_id"]


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_optional_fields_may_be_null(event_type):
    nulls = dict.fromkeys(OPTIONAL_FIELDS[event_type])
    _valid(dumps(MAKERS[event_type](payload=nulls)))


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_optional_fields_may_be_missing(event_type):
    missing = dict.fromkeys(OPTIONAL_FIELDS[event_type], DROP)
    event = MAKERS[event_type](payload=missing)
    assert not set(OPTIONAL_FIELDS[event_type]) & set(event["payload"])
    _valid(dumps(event))


@pytest.mark.parametrize(
    "event_time",
    [
        "2026-11-27T13:15:00Z",
        "2026-11-27t13:15:00Z",
        "2026-11-27T10:15:00.123456-03:00",
        "2026-11-28T00:45:00+14:00",
        "2024-02-29T23:59:59-12:00",
    ],
)
def test_rfc3339_timestamps_with_offset_pass(event_time):
    _valid(dumps(make_flight_event(event_time=event_time)))


def test_lowercase_z_offset_is_rfc3339():
    """RFC 3339 section 5.6 allows a lower-case "t" and "z"; Postgres accepts both.

    BUG (validator): `_parse_ts` uses Python 3.11's `datetime.fromisoformat`, which rejects a
    lower-case "z", so a contract-valid event is quarantined."""
    _valid(dumps(make_flight_event(event_time="2026-11-27T13:15:00z")))
    _valid(dumps(make_flight_event(payload={"actual_departure": "2026-11-27T15:41:00z"})))


@pytest.mark.parametrize(
    "payload",
    [
        {"status": "diverted", "seat_capacity": 0},
        {"flight_number": 1, "carrier": "H2"},
        {"flight_number": 9999},
        {"flight_date": "2028-02-29"},
    ],
)
def test_flight_edge_values_pass(payload):
    _valid(dumps(make_flight_event(payload=payload)))


@pytest.mark.parametrize(
    "payload",
    [
        {"latitude": 90, "longitude": -180, "heading_deg": 0, "ground_speed_kt": 0},
        {"latitude": -90, "longitude": 180, "heading_deg": 359.99},
        {"altitude_ft": -1000},
    ],
)
def test_position_edge_values_pass(payload):
    _valid(dumps(make_position_event(payload=payload)))


def test_unknown_extra_fields_are_kept():
    event = make_flight_event(payload={"gate": "B12"})
    event["trace_id"] = "abc"
    assert _valid(dumps(event)).doc["payload"]["gate"] == "B12"


def test_non_ascii_utf8_is_fine():
    event = make_passenger_event(payload={"passenger_ref": "José Ñúñez / São Paulo ✈"})
    _valid(json.dumps(event, ensure_ascii=False).encode("utf-8"))


def test_whitespace_and_pretty_printing_are_fine():
    event = make_position_event()
    _valid(json.dumps(event, indent=2).encode("utf-8"))
    _valid(b"\r\n\t " + dumps(event) + b"\n")


# --- the schema files ----------------------------------------------------------------------------


def _schema_files() -> list[str]:
    folder = resources.files("latam_dagster.contracts") / "schemas" / "v1"
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".json"))


def test_there_is_one_schema_file_per_event_type():
    assert _schema_files() == sorted(f"{t}.json" for t in EVENT_TYPES)


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_schema_is_valid_draft7(event_type):
    schema = load_schema(event_type)
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    jsonschema.Draft7Validator.check_schema(schema)
    assert schema["properties"]["event_type"]["const"] == event_type
    assert set(schema["required"]) == set(ENVELOPE_FIELDS)


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_reference_implementation_agrees_on_examples(event_type):
    """The python-jsonschema Draft 7 validator accepts our examples and rejects a bad one, so the
    schema files mean the same thing to other consumers as they do to jsonschema-rs."""
    validator = jsonschema.Draft7Validator(
        load_schema(event_type), format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER
    )
    maker = MAKERS[event_type]
    validator.validate(maker())
    validator.validate(maker(payload=dict.fromkeys(OPTIONAL_FIELDS[event_type], DROP)))
    assert not validator.is_valid(maker(schema_version=2))
    assert not validator.is_valid(maker(message_id="nope"))


@pytest.mark.parametrize(
    ("event_time", "words"),
    [
        ("2026-11-27T10:15:00+20:00", "UTC offset"),
        ("1969-12-31T23:00:00Z", "year outside 1970..2100"),
        ("9999-12-31T23:00:00-12:00", "year outside 1970..2100"),
    ],
)
def test_timestamps_postgres_or_readers_cannot_hold_are_refused(event_time, words):
    body = dumps({**make_flight_event(), "event_time": event_time})
    outcome = validate_body(body, 1 << 20)
    assert isinstance(outcome, InvalidEvent)
    assert words in outcome.reason


# --- hostile bodies: the validator never raises, and its reasons quote no value ----------------

SECRET = "AB1234567 JUAN PEREZ"


@pytest.mark.parametrize(
    ("overrides", "where"),
    [
        ({"payload": {"status": SECRET}}, "payload/status"),
        ({"payload": {"carrier": SECRET}}, "payload/carrier"),
        ({"payload": {"flight_number": SECRET}}, "payload/flight_number"),
        ({"payload": {"scheduled_departure": SECRET}}, "payload/scheduled_departure"),
        ({"event_time": SECRET}, "event_time"),
        ({"source_system": SECRET}, "source_system"),
        ({"message_id": SECRET}, "message_id"),
        ({"event_type": SECRET}, "event_type"),
        ({"schema_version": SECRET}, "schema_version"),
    ],
)
def test_reasons_name_the_path_and_never_the_value(overrides, where):
    outcome = _invalid(dumps(make_flight_event(**overrides)))
    assert where in outcome.reason
    assert "JUAN" not in outcome.reason and "AB1234567" not in outcome.reason
    assert outcome.message_id is None or SECRET not in outcome.message_id


def test_a_nul_is_named_by_its_path_and_odd_keys_are_not_quoted():
    nested = make_flight_event(payload={"notes": [{"ok": "x"}, {SECRET: {"deep": "a\u0000"}}]})
    reason = _invalid(dumps(nested)).reason
    assert "payload/notes/1/*/deep" in reason and "JUAN" not in reason


def test_a_nul_escape_behind_a_key_given_twice_is_refused():
    body = dumps(make_flight_event()).replace(
        b'"tail_number":"CC-BGA"', b'"tail_number":"a\\u0000b","tail_number":"CC-BGA"'
    )
    assert "key given twice" in _invalid(body).reason


def test_an_escaped_backslash_before_u0000_is_plain_text():
    body = dumps(make_flight_event(payload={"note": "\\u0000"}))
    assert b'"\\\\u0000"' in body
    assert isinstance(validate_body(body, LIMIT), ValidEvent)


@pytest.mark.parametrize("number", ["1e-400", "-2e-324", "1.5E-999"])
def test_a_number_that_underflows_a_double_is_refused(number):
    body = dumps(make_position_event()).replace(
        b'"latitude":-33.39', f'"latitude":{number}'.encode()
    )
    assert "underflows" in _invalid(body).reason


@pytest.mark.parametrize("number", ["0e-400", "3e-324", "0.0"])
def test_tiny_numbers_a_double_holds_are_fine(number):
    body = dumps(make_position_event()).replace(
        b'"latitude":-33.39', f'"latitude":{number}'.encode()
    )
    assert isinstance(validate_body(body, LIMIT), ValidEvent)


def test_a_value_nested_too_deep_for_the_schema_validator_is_refused_not_raised():
    body = dumps(make_flight_event(source_system="x")).replace(
        b'"source_system":"x"', b'"source_system":' + b"[" * 300 + b"]" * 300
    )
    assert "too deep" in _invalid(body).reason


def test_an_extra_field_nested_to_the_parser_limit_with_nuls_is_refused_not_raised():
    nested = b'{"k\\u0000":' * 1000 + b"1" + b"}" * 1000
    body = dumps(make_flight_event(payload={"extra": "@"})).replace(b'"@"', nested)
    assert "NUL" in _invalid(body).reason
