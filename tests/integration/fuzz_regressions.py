"""Minimal messages that broke the drain, replayed by `test_ingest_fuzz.py` between good events.

Plain data, one dict per message: `body` and `routing_key` as published (bytes), `properties`
(AMQP basic properties; None means the standard persistent JSON ones), `headers` (None for none;
a `RawHeader` value is sent verbatim, as its AMQP type tag and bytes) and `broke`, one line on
what it broke when it was found. Entries stay after the fix: they are the regression tests. Add
each new minimal example the fuzzer finds here.
"""

from __future__ import annotations

from tests.integration.fuzz_strategies import RawHeader

# a contract-valid flight_status event; entries below add to or change it
FLIGHT = (
    b'{"message_id":"7f1d3c2e-4b5a-4c6d-8e9f-0a1b2c3d4e60","schema_version":1,'
    b'"event_type":"flight_status","event_time":"2026-11-27T10:15:00-03:00",'
    b'"source_system":"sabre","payload":{"carrier":"LA","flight_number":800,'
    b'"flight_date":"2026-11-27","origin":"SCL","destination":"LIM","status":"scheduled",'
    b'"scheduled_departure":"2026-11-27T12:30:00-03:00",'
    b'"scheduled_arrival":"2026-11-27T14:45:00-05:00","actual_departure":null,'
    b'"actual_arrival":null,"tail_number":"CC-BGA","seat_capacity":174}}'
)

REGRESSIONS: list[dict] = [
    {
        "id": "nul_in_message_id",
        "body": b'{"message_id":"\\u0000"}',
        "routing_key": b"flight.fuzz",
        "properties": None,
        "headers": None,
        "broke": "ValueError from psycopg2 (NUL in a string literal) writing the quarantine "
        "row's message_id: the drain raised and the batch was not acked",
    },
    {
        "id": "valid_event_non_utf8_routing_key",
        "body": FLIGHT,
        "routing_key": b"flight.\xff",
        "properties": None,
        "headers": None,
        "broke": "TypeError in writer._copy_escape: pika delivers a non-UTF-8 routing key as "
        "bytes; the drain raised",
    },
    {
        "id": "valid_event_deep_extra_nul_each_level",
        "body": FLIGHT[:-1]
        + b',"extra":'
        + b'{"d":' * 1000
        + b"1"
        + b',"n":"\\u0000"}' * 1000
        + b"}",
        "routing_key": b"flight.sabre",
        "properties": None,
        "headers": None,
        "broke": "RecursionError in validator._has_nul (1000 levels, a NUL on each): raised "
        "out of the consumer callback, the drain raised",
    },
    {
        "id": "nul_in_value_shadowed_by_duplicate_key",
        "body": b'{"note":"\\u0000","note":"",' + FLIGHT[1:],
        "routing_key": b"flight.sabre",
        "properties": None,
        "headers": None,
        "broke": "contract-valid for the validator (orjson keeps the last duplicate key, so the "
        "NUL scan never sees it) but Postgres jsonb refuses any \\u0000 (22P05): the batch "
        "fell back to row by row and the event was quarantined as 'rejected by the warehouse'",
    },
    {
        "id": "invalid_value_nested_256_deep",
        "body": FLIGHT.replace(b'"sabre"', b"[" * 256 + b"]" * 256),
        "routing_key": b"flight.sabre",
        "properties": None,
        "headers": None,
        "broke": "ValueError 'Recursion limit reached' from jsonschema_rs iter_errors (an invalid "
        "value nested 256+ deep) raised out of validate_body; classify's catch-all quarantines "
        "it as 'could not handle the message: ValueError' (the contract now refuses it: too deep)",
    },
    {
        "id": "latitude_underflows_float8",
        "body": b'{"message_id":"7f1d3c2e-4b5a-4c6d-8e9f-0a1b2c3d4e61","schema_version":1,'
        b'"event_type":"position_report","event_time":"2026-11-27T10:15:00-03:00",'
        b'"source_system":"adsb-feed","payload":{"tail_number":"CC-BGA","latitude":1e-400,'
        b'"longitude":-70.79}}',
        "routing_key": b"position.adsb-feed",
        "properties": None,
        "headers": None,
        "broke": "contract-valid for the validator (orjson reads 1e-400 as 0.0, within -90..90) "
        "but (p->>'latitude')::float8 refuses the exact decimal jsonb keeps (22003): the batch "
        "fell back to row by row and the event was quarantined as 'rejected by the warehouse'",
    },
    {
        "id": "header_timestamp_past_year_9999",
        "body": FLIGHT,
        "routing_key": b"flight.sabre",
        "properties": None,
        "headers": {"sent_at": RawHeader(b"T" + b"\xff" * 8)},
        "broke": "OverflowError in pika's header decoding (datetime.fromtimestamp): the "
        "connection dropped and the drain raised DrainInterrupted (until the lenient decoder)",
    },
    {
        "id": "header_timestamp_past_year_9999_in_a_list",
        "body": FLIGHT,
        "routing_key": b"flight.sabre",
        "properties": None,
        "headers": {"at": [1, RawHeader(b"T" + b"\xff" * 8)]},
        "broke": "as header_timestamp_past_year_9999, inside an array (AMQP 'A')",
    },
]
