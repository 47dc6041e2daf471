"""No value of a message escapes a drain except in `raw.quarantine.body`.

A source controls every byte it sends, and a value may be personal data: a passenger's name or
passport number sent in a flight number, a timestamp, a source name, an AMQP header, or a body
that is not even JSON. The drain keeps the body byte for byte in the quarantine and copies no value
anywhere else: the quarantine reason and error class name the JSON path and the rule, the
quarantine's message_id is a UUID or nothing, and no log line, Dagster event or metric holds a
value.

The messages carry a unique marker (bare, inside a longer text, after a passport-like prefix) in
every envelope and payload field of the three event types, each breaking the contract at that
field, plus bodies that are not JSON and AMQP properties and headers. One drain runs them the way
production does: the queue sensor's run request, executed as a `drain_job` run in a Dagster
instance with real resources. Every test below then searches one place that run left behind.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pika
import pytest
from dagster import RunRequest, build_sensor_context, instance_for_test, serialize_value

from latam_dagster.assets.raw import raw_asset_key
from latam_dagster.definitions import defs
from latam_dagster.ingest.topology import QUEUES, Topology, declare_topology, delete_topology
from latam_dagster.jobs import DRAIN_JOB_NAME
from latam_dagster.observability.broker import BrokerCollector
from latam_dagster.observability.config import management_url_from_amqp, vhost_of
from latam_dagster.observability.dagster_state import DagsterCollector
from latam_dagster.observability.exporter import Exporter
from latam_dagster.observability.logging import JsonFormatter, json_formatter_config
from latam_dagster.observability.warehouse import WarehouseCollector
from latam_dagster.pipeline import current_resources
from latam_dagster.quality.audit_checks import all_audit_check_keys
from latam_dagster.resources import RabbitMQResource
from latam_dagster.sensors.queue_sensors import queue_sensor
from latam_dagster.settings import get_settings
from latam_dagster.transform.airports import load_dim_airport
from tests.conftest import RUN_ID, _admin_exec, _db_url, drop_database, query
from tests.integration.ingest_helpers import (
    DROP,
    assert_queues_empty,
    dumps,
    make_flight_event,
    make_passenger_event,
    make_position_event,
    quarantine_rows,
)
from tests.integration.observability_support import management_available, wait_for_depth

pytestmark = pytest.mark.integration

MARKER_PREFIX = "PII-MARKER-"
PASSPORT = "AB1234567 JUAN PEREZ"
UUID_TEXT = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
MAX_MESSAGE_BYTES = 256 * 1024
FLIGHT_KEY, PASSENGER_KEY, POSITION_KEY = "flight.sabre", "passenger.amadeus", "position.adsb-feed"
UNROUTED_KEY = "misrouted.ops_x"  # matches no binding: drained from the unrouted queue
PERSISTENT = pika.BasicProperties(delivery_mode=2, content_type="application/json")


@dataclass
class Case:
    """One message to publish and what its quarantine row must show."""

    id: str
    body: bytes
    routing_key: str
    # words the reason must contain (case-insensitive): the JSON path when there is one
    names: tuple[str, ...]
    props: pika.BasicProperties = field(default_factory=lambda: PERSISTENT)
    valid: bool = False  # a contract-valid event, for raw rather than the quarantine
    marker_in_body: bool = True


def _variants(marker: str) -> dict[str, str]:
    return {
        "bare": marker,
        "inside": f"Pasajero JUAN PEREZ, ref {marker} (tarjeta de embarque)",
        "passport": f"{PASSPORT} {marker}",
    }


def _field_cases(marker: str) -> list[Case]:
    """Each field of the envelope and of the three payloads, broken there by a marker value (or,
    for a number out of range, by a bound beside a sibling extra field that holds the marker)."""
    v = _variants(marker)
    flight, passenger, position = make_flight_event, make_passenger_event, make_position_event
    keys = {flight: FLIGHT_KEY, passenger: PASSENGER_KEY, position: POSITION_KEY}
    cases: list[Case] = []

    def add(case_id: str, make, names: tuple[str, ...], **overrides: Any) -> None:
        body = dumps(make(**overrides))
        cases.append(Case(case_id, body, keys[make], names))

    def add_payload(family: str, make, bad_values: dict[str, Any]) -> None:
        """One case per payload field, broken by the bad value given for it."""
        for name, bad in bad_values.items():
            add(f"{family}.payload.{name}", make, (f"payload/{name}",), payload={name: bad})

    # envelope: not a UUID, not an integer, unknown type, no date-time, outside the pattern
    for make, etype in ((flight, "flight"), (passenger, "passenger"), (position, "position")):
        add(f"{etype}.message_id.bare", make, ("message_id",), message_id=v["bare"])
        add(f"{etype}.event_time.inside", make, ("event_time",), event_time=v["inside"])
        add(
            f"{etype}.source_system.passport", make, ("source_system",), source_system=v["passport"]
        )
    add("message_id.passport", flight, ("message_id",), message_id=v["passport"])
    add("message_id.object", flight, ("message_id",), message_id={"name": v["passport"]})
    add("schema_version.bare", flight, ("schema_version",), schema_version=v["bare"])
    add("schema_version.list", passenger, ("schema_version",), schema_version=[v["passport"]])
    add("event_type.bare", flight, ("event_type",), event_type=v["bare"])
    add("event_type.inside", position, ("event_type",), event_type=f"flight_status {marker}")
    add("event_type.object", passenger, ("event_type",), event_type={"passenger": v["passport"]})
    add("event_time.passport", flight, ("event_time",), event_time=v["passport"])
    add(
        "event_time.almost",
        passenger,
        ("event_time",),
        event_time=f"2026-11-27T10:15:00-03:00 {marker}",
    )
    add("source_system.bare", position, ("source_system",), source_system=v["bare"])
    add("payload.string", flight, ("payload",), payload=v["passport"])
    add("payload.list", passenger, ("payload",), payload=[v["bare"], v["passport"]])

    # flight_status payload
    fs = "flight"
    add_payload(
        fs,
        flight,
        {
            "carrier": v["bare"],
            "flight_number": v["passport"],
            "flight_date": v["inside"],
            "origin": f"SCL {marker}",
            "destination": v["passport"],
            "status": f"landed {marker}",
            "scheduled_departure": v["bare"],
            "scheduled_arrival": f"2026-11-27T14:45:00-05:00 {marker}",
            "actual_departure": {"when": v["passport"]},
            "actual_arrival": v["inside"],
            "tail_number": f"CC-BGA {marker}",
            "seat_capacity": v["passport"],
        },
    )
    add(
        f"{fs}.payload.seat_capacity.range",
        flight,
        ("payload/seat_capacity",),
        payload={"seat_capacity": 5000, "seat_capacity_note": v["passport"]},
    )
    add(
        f"{fs}.payload.flight_number.float",
        flight,
        ("payload/flight_number",),
        payload={"flight_number": 800.0, "flight_number_note": v["inside"]},
    )
    add(
        f"{fs}.payload.status.missing",
        flight,
        ("payload", "status"),
        payload={"status": DROP, "status_text": v["passport"]},
    )

    # passenger_event payload
    ps = "passenger"
    add_payload(
        ps,
        passenger,
        {
            "passenger_ref": (v["passport"] + " ") * 12,  # longer than 256 characters
            "carrier": v["passport"],
            "flight_number": v["bare"],
            "flight_date": v["passport"],
            "origin": v["inside"],
            "action": f"booked {marker}",
            "cabin": v["passport"],
            "fare_amount": v["inside"],
            "currency": v["bare"],
        },
    )
    add(
        f"{ps}.payload.passenger_ref.type",
        passenger,
        ("payload/passenger_ref",),
        payload={"passenger_ref": {"name": "JUAN PEREZ", "passport": v["passport"]}},
    )
    add(
        f"{ps}.payload.fare_amount.range",
        passenger,
        ("payload/fare_amount",),
        payload={"fare_amount": -1, "fare_holder": v["passport"]},
    )

    # position_report payload
    pr = "position"
    add_payload(
        pr,
        position,
        {
            "tail_number": f"CC-BGA {marker}",
            "latitude": v["passport"],
            "longitude": v["bare"],
            "altitude_ft": v["inside"],
            "ground_speed_kt": v["passport"],
            "heading_deg": v["bare"],
            "carrier": v["inside"],
            "flight_number": v["passport"],
            "flight_date": v["bare"],
            "origin": v["passport"],
        },
    )
    for name, bad in (("latitude", 123), ("longitude", -181), ("heading_deg", 360)):
        add(
            f"{pr}.payload.{name}.range",
            position,
            (f"payload/{name}",),
            payload={name: bad, f"{name}_reported_by": v["passport"]},
        )

    # an extra nested field holding the marker and a NUL, in its value or in its name
    add(
        "nul.nested_value",
        flight,
        ("payload/notes",),
        payload={"notes": {"agent": {"name": f"{v['passport']}\u0000"}}},
    )
    add(
        "nul.nested_key",
        passenger,
        ("payload/notes",),
        payload={"notes": {v["passport"]: "checked\u0000in"}},
    )
    return cases


def _body_cases(marker: str) -> list[Case]:
    """Bodies that are not a JSON object at all, with the marker in them."""
    m = marker.encode()
    passport = f"{PASSPORT} {marker}".encode()
    return [
        Case("body.text", b"Pasajero " + passport + b" embarco en LA800", FLIGHT_KEY, ("JSON",)),
        Case(
            "body.truncated", b'{"passenger_ref": "' + passport + b'", ', PASSENGER_KEY, ("JSON",)
        ),
        Case("body.bare_word", b'{"passenger_ref": ' + m + b"}", PASSENGER_KEY, ("JSON",)),
        Case("body.surrogate", b'{"name": "\\ud800' + m + b'"}', FLIGHT_KEY, ("JSON",)),
        Case("body.not_utf8", passport + b" \xff\xfe", POSITION_KEY, ("UTF-8",)),
        Case("body.unrouted", b"<xml>" + passport + b"</xml>", UNROUTED_KEY, ("JSON",)),
        Case("body.json_string", dumps(f"{PASSPORT} {marker}"), FLIGHT_KEY, ("object",)),
        Case("body.json_list", dumps([marker, {"name": PASSPORT}]), PASSENGER_KEY, ("object",)),
        Case("body.marker_key", dumps({marker: PASSPORT}), FLIGHT_KEY, ("message_id",)),
        Case(
            "body.too_large",
            b'{"passenger_ref": "' + passport + b'", "x": "' + b"y" * MAX_MESSAGE_BYTES + b'"}',
            PASSENGER_KEY,
            ("large",),
        ),
    ]


def _property_cases(marker: str) -> list[Case]:
    """AMQP properties and headers carrying the marker, on bad and on valid messages."""
    passport = f"{PASSPORT} {marker}"
    props = pika.BasicProperties(
        delivery_mode=2,
        content_type=f"application/json; name={marker}",
        content_encoding=marker,
        message_id=passport,
        correlation_id=marker,
        reply_to=marker,
        type=passport,
        app_id=marker,
        headers={
            "x-passenger": passport,
            "x-nested": {"traveller": {"name": "JUAN PEREZ", "doc": marker}},
            "x-list": [marker, passport],
            "x-bytes": marker.encode(),
            marker: "header named after the passenger",
        },
    )
    bad_status = dumps(make_flight_event(payload={"status": "landed"}))
    bad_latitude = dumps(make_position_event(payload={"latitude": 95}))
    on_bad = {"props": props, "marker_in_body": False}
    return [
        Case("props.bad_status", bad_status, FLIGHT_KEY, ("payload/status",), **on_bad),
        Case("props.bad_latitude", bad_latitude, UNROUTED_KEY, ("payload/latitude",), **on_bad),
        Case("props.not_json", b"not json at all", PASSENGER_KEY, ("JSON",), **on_bad),
        Case(
            "props.valid",
            dumps(make_flight_event()),
            FLIGHT_KEY,
            (),
            props=props,
            valid=True,
            marker_in_body=False,
        ),
        # the marker where it belongs: a valid passenger_ref goes to raw, and still to no log
        Case(
            "props.valid_passenger",
            dumps(make_passenger_event(payload={"passenger_ref": passport})),
            PASSENGER_KEY,
            (),
            props=props,
            valid=True,
        ),
    ]


def all_cases(marker: str) -> list[Case]:
    cases = [*_field_cases(marker), *_body_cases(marker), *_property_cases(marker)]
    assert len({c.id for c in cases}) == len(cases), "duplicate case ids"
    assert len({(c.routing_key, c.body) for c in cases}) == len(cases), "duplicate bodies"
    return cases


# --- the run -------------------------------------------------------------------------------------


class _Keep(logging.Handler):
    """Keeps every record, like pytest's caplog, for the life of the module's one drain run."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclass
class Drained:
    marker: str
    cases: list[Case]
    run_id: str
    records: list[logging.LogRecord]
    json_lines: str  # the root logger's output through the platform's JsonFormatter
    dagster_json_lines: str  # the Dagster run's managed python logs, as dagster.yaml ships them
    event_log: list[tuple[str, str]]  # (event type, serialized entry)
    materializations: dict[str, dict[str, Any]]  # queue -> metadata
    quarantine: list[dict[str, Any]]
    metrics: str
    in_raw: set[str] = field(default_factory=set)  # message_ids of raw rows


def _publish(amqp_url: str, topo: Topology, cases: list[Case]) -> None:
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = conn.channel()
        channel.confirm_delivery()
        for case in cases:
            channel.basic_publish(topo.exchange, case.routing_key, case.body, case.props)
    finally:
        conn.close()


def _event_kind(entry) -> str:
    return entry.dagster_event_type.value if entry.dagster_event_type else "LOG"


def _run_drain(amqp_url: str, topo: Topology, url: str, tmp: Path) -> tuple:
    """The queue sensor's request, executed as production's daemon would (without the checks,
    which the sensor requests only when due and which read counts, not messages)."""
    dagster_log = tmp / "dagster-run.jsonl"
    python_logs = {
        "python_log_level": "DEBUG",
        "managed_python_loggers": ["latam_dagster"],
        "dagster_handler_config": {
            "handlers": {
                "json_file": {
                    "class": "logging.FileHandler",
                    "filename": str(dagster_log),
                    "formatter": "json",
                    "level": "DEBUG",
                }
            },
            "formatters": {"json": json_formatter_config("dagster")},
        },
    }
    with instance_for_test(overrides={"python_logs": python_logs}) as instance:
        resource = RabbitMQResource(amqp_url=amqp_url, prefix=topo.prefix)
        context = build_sensor_context(
            instance=instance, resources={"rabbitmq": resource}, definitions=defs
        )
        request = queue_sensor(context)
        assert isinstance(request, RunRequest), request
        assert {raw_asset_key(f) for f in QUEUES} <= set(request.asset_selection)
        # the audit of each batch is part of the curated assets; the GX checks are not needed
        audit = set(request.asset_check_keys or []) & all_audit_check_keys()
        job = defs.resolve_job_def(DRAIN_JOB_NAME).get_subset(
            asset_selection=set(request.asset_selection), asset_check_selection=audit
        )
        result = job.execute_in_process(
            instance=instance,
            tags=request.tags,
            resources=current_resources(get_settings()),
            raise_on_error=False,
        )
        run_id = result.run_id
        # every entry whole: messages, metadata, errors, step and asset keys
        event_log = [
            (_event_kind(entry), serialize_value(entry)) for entry in instance.all_logs(run_id)
        ]
        event_log.append(("RUN", serialize_value(instance.get_run_by_id(run_id))))
        materializations = {
            m.metadata["queue"].value: {k: v.value for k, v in m.metadata.items()}
            for m in result.asset_materializations_for_node("drain_queues")
        }
        sources: list = [
            WarehouseCollector(url, topo),
            DagsterCollector(lambda: instance, topo.prefix),
        ]
        if management_available(amqp_url):
            sources.append(
                BrokerCollector(
                    amqp_url, topo, vhost_of(amqp_url), management_url_from_amqp(amqp_url)
                )
            )
        exporter = Exporter(sources)
        collected = exporter.collect_once()
        assert all(collected.values()), collected
        metrics = exporter.exposition().decode()
        assert result.success, [e.message for e in result.all_events if e.is_failure]
    return run_id, event_log, materializations, metrics, dagster_log.read_text()


@pytest.fixture(scope="module")
def drained(amqp_url: str, template_db: str, tmp_path_factory) -> Iterator[Drained]:
    """One drain run of every case, and everything it left behind."""
    marker = f"{MARKER_PREFIX}{uuid.uuid4().hex}"
    cases = all_cases(marker)
    db = f"latam_t_{RUN_ID}_pii_{uuid.uuid4().hex[:8]}"
    _admin_exec(f'CREATE DATABASE "{db}" TEMPLATE "{template_db}"')
    url = _db_url(db)
    topo = Topology(prefix=f"t{uuid.uuid4().hex[:10]}")
    declare_topology(amqp_url, topo)
    keep, json_out = _Keep(), io.StringIO()
    json_handler = logging.StreamHandler(json_out)
    json_handler.setLevel(logging.DEBUG)
    json_handler.setFormatter(JsonFormatter(service="pii-test"))
    root = logging.getLogger()
    old_level = root.level
    try:
        load_dim_airport(url)  # reference data, as in production, for the curated steps
        _publish(amqp_url, topo, cases)
        wait_for_depth(amqp_url, topo, len(cases))
        with pytest.MonkeyPatch.context() as env:
            env.setenv("LATAM_WAREHOUSE_URL", url)
            env.setenv("LATAM_AMQP_URL", amqp_url)
            env.setenv("LATAM_TOPOLOGY_PREFIX", topo.prefix)
            env.setenv("LATAM_MAX_MESSAGE_BYTES", str(MAX_MESSAGE_BYTES))
            env.setenv("LATAM_DRAIN_IDLE_SECONDS", "0.5")
            env.setenv("LATAM_QUALITY_DIR", str(tmp_path_factory.mktemp("quality")))
            root.addHandler(keep)
            root.addHandler(json_handler)
            root.setLevel(logging.DEBUG)
            try:
                run_id, event_log, mats, metrics, dagster_lines = _run_drain(
                    amqp_url, topo, url, tmp_path_factory.mktemp("logs")
                )
            finally:
                root.removeHandler(keep)
                root.removeHandler(json_handler)
                root.setLevel(old_level)
        assert_queues_empty(amqp_url, topo)
        in_raw = {
            mid
            for table in ("raw.flight_events", "raw.passenger_events", "raw.position_reports")
            for (mid,) in query(url, f"SELECT message_id::text FROM {table}")
        }
        yield Drained(
            marker=marker,
            cases=cases,
            run_id=run_id,
            records=keep.records,
            json_lines=json_out.getvalue(),
            dagster_json_lines=dagster_lines,
            event_log=event_log,
            materializations=mats,
            quarantine=quarantine_rows(url),
            metrics=metrics,
            in_raw=in_raw,
        )
    finally:
        delete_topology(amqp_url, topo)
        drop_database(db)


# --- searching -----------------------------------------------------------------------------------


def _needles(marker: str) -> tuple[str, ...]:
    """The marker, its random part (also cut short, as a truncated value would be), and the
    passport-like words around it."""
    random_part = marker.removeprefix(MARKER_PREFIX)
    return (marker, random_part, random_part[:12], "JUAN PEREZ", "AB1234567")


def _leak(text: str, marker: str) -> str | None:
    """An excerpt around the first needle found in `text`, or None."""
    low = text.lower()
    for needle in _needles(marker):
        at = low.find(needle.lower())
        if at >= 0:
            return text[max(0, at - 120) : at + len(needle) + 60]
    return None


def _leaks(items: list[tuple[str, str]], marker: str, limit: int = 25) -> list[str]:
    found = [
        f"{where}: ...{excerpt}..." for where, text in items if (excerpt := _leak(text, marker))
    ]
    if len(found) > limit:
        found = [*found[:limit], f"... and {len(found) - limit} more"]
    return found


def _row_of(d: Drained, case: Case) -> dict[str, Any] | None:
    digest = hashlib.sha256(case.body).digest()
    return next((r for r in d.quarantine if r["body_sha256"] == digest), None)


def _record_text(record: logging.LogRecord) -> str:
    """Everything a handler could print of a record: message, arguments, extras, traceback."""
    parts = [record.getMessage(), repr(record.__dict__)]
    if record.exc_info:
        parts.append(logging.Formatter().formatException(record.exc_info))
    if record.stack_info:
        parts.append(record.stack_info)
    return "\n".join(parts)


# --- the tests -----------------------------------------------------------------------------------


def test_every_message_lands_with_its_body_byte_for_byte(drained: Drained):
    """The quarantine keeps each bad body exactly (a prefix of it when too large) and the marker
    is really there: the searches below cannot pass for want of a marker."""
    problems = []
    for case in drained.cases:
        if case.valid:
            mid = json.loads(case.body)["message_id"]
            if mid not in drained.in_raw:
                problems.append(f"{case.id}: valid event not in raw")
            continue
        row = _row_of(drained, case)
        if row is None:
            problems.append(f"{case.id}: no quarantine row")
            continue
        body = row["body"]
        whole = body == case.body and row["body_bytes"] == len(case.body)
        prefix = row["body_truncated"] and case.body.startswith(body) and len(body) > 0
        if not (whole or prefix):
            problems.append(f"{case.id}: body not kept byte for byte ({len(body)} bytes)")
        if case.marker_in_body and drained.marker.encode() not in body:
            problems.append(f"{case.id}: the marker is not in the quarantined body")
    assert not problems, "\n".join(problems)
    bad = [c for c in drained.cases if not c.valid]
    assert len(drained.quarantine) == len(bad)
    assert sum(m["quarantined"] for m in drained.materializations.values()) == len(bad)


def test_reasons_name_the_field_path(drained: Drained):
    problems = []
    for case in drained.cases:
        row = None if case.valid else _row_of(drained, case)
        if row is None:
            continue
        reason = row["reason"] or ""
        missing = [n for n in case.names if n.lower() not in reason.lower()]
        if missing:
            problems.append(f"{case.id}: reason {reason!r} does not name {missing}")
    assert not problems, "\n".join(problems)


def test_quarantine_reason_and_error_class_hold_no_value(drained: Drained):
    items = []
    for row in drained.quarantine:
        items.append((f"reason of {row['routing_key']}", row["reason"] or ""))
        items.append((f"error_class of {row['routing_key']}", row["error_class"] or ""))
    leaks = _leaks(items, drained.marker)
    assert not leaks, "marker in raw.quarantine.reason/error_class:\n" + "\n".join(leaks)


def test_quarantine_message_id_is_a_uuid_or_null(drained: Drained):
    wrong = [
        f"{row['reason']!r}: message_id {row['message_id']!r}"
        for row in drained.quarantine
        if row["message_id"] is not None and not UUID_TEXT.match(row["message_id"])
    ]
    assert not wrong, "raw.quarantine.message_id not a UUID:\n" + "\n".join(wrong)
    # and a well-formed one is kept: the column still correlates what it can
    ids = {row["message_id"] for row in drained.quarantine}
    case = next(c for c in drained.cases if c.id == "flight.payload.status")
    assert json.loads(case.body)["message_id"] in ids


def test_python_log_records_hold_no_value(drained: Drained):
    ingest = [r for r in drained.records if r.name.startswith("latam_dagster.ingest")]
    assert ingest, "no log record of the drain was captured"
    items = [(f"{r.name} {r.levelname}", _record_text(r)) for r in drained.records]
    leaks = _leaks(items, drained.marker)
    assert not leaks, "marker in Python log records:\n" + "\n".join(leaks)


def test_json_log_lines_hold_no_value(drained: Drained):
    lines = drained.json_lines.splitlines()
    dagster_lines = drained.dagster_json_lines.splitlines()
    assert any('"latam_dagster.ingest' in line for line in lines)
    assert any(drained.run_id in line for line in dagster_lines)
    items = [("root JSON log", line) for line in lines]
    items += [("Dagster run JSON log", line) for line in dagster_lines]
    leaks = _leaks(items, drained.marker)
    assert not leaks, "marker in JSON log lines:\n" + "\n".join(leaks)


def test_dagster_event_log_holds_no_value(drained: Drained):
    kinds = {kind for kind, _ in drained.event_log}
    assert "ASSET_MATERIALIZATION" in kinds
    leaks = _leaks(drained.event_log, drained.marker)
    assert not leaks, "marker in the Dagster event log:\n" + "\n".join(leaks)


def test_metrics_hold_no_value(drained: Drained):
    assert "latam_ingest_quarantined_messages_total" in drained.metrics
    items = [("metrics", line) for line in drained.metrics.splitlines()]
    leaks = _leaks(items, drained.marker)
    assert not leaks, "marker in the exporter's metrics:\n" + "\n".join(leaks)


def test_the_raw_asset_metadata_counts_every_queue(drained: Drained):
    """The run drained every queue the sensor asked for, as one micro-batch."""
    assert len(drained.materializations) == len(QUEUES)
    assert all(m["stop_reason"] == "queue empty" for m in drained.materializations.values())
