"""Structured JSON logs: one object per line with the correlation ids, from plain Python code,
from Dagster runs (through dagster.yaml's handler config) and from the Flask API."""

from __future__ import annotations

import io
import json
import logging

import pytest
from dagster import asset, instance_for_test, materialize
from flask import Flask

from latam_dagster.observability.flask_logging import HEADER, init_request_logging
from latam_dagster.observability.logging import (
    configure_logging,
    json_formatter_config,
    log_context,
)


@pytest.fixture
def captured() -> io.StringIO:
    stream = io.StringIO()
    handler = configure_logging("test", level="INFO", stream=stream, fmt="json")
    yield stream
    logging.getLogger().removeHandler(handler)


def _lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_json_lines_carry_ids_from_extra_and_context(captured):
    log = logging.getLogger("latam_dagster.ingest.drain")
    log.warning("quarantined: not JSON", extra={"message_id": "m-1", "queue": "latam.flights"})
    with log_context(run_id="run-42"):
        log.info("batch committed", extra={"inserted": 2000})
        with log_context(message_id="m-2"):
            try:
                raise ValueError("bad latitude")
            except ValueError:
                log.exception("rejected")
    log.info("outside")
    first, second, third, fourth = _lines(captured)
    assert first["message"] == "quarantined: not JSON"
    assert first["level"] == "warning" and first["service"] == "test"
    assert first["message_id"] == "m-1" and first["queue"] == "latam.flights"
    assert first["logger"] == "latam_dagster.ingest.drain"
    assert first["ts"].endswith("+00:00")
    assert second["run_id"] == "run-42" and second["inserted"] == 2000
    assert third["run_id"] == "run-42" and third["message_id"] == "m-2"
    assert "ValueError: bad latitude" in third["error"]
    assert "run_id" not in fourth and "message_id" not in fourth


def test_dagster_run_logs_are_json_with_run_id(tmp_path):
    path = tmp_path / "dagster-events.jsonl"
    python_logs = {
        "managed_python_loggers": ["latam_dagster"],
        "dagster_handler_config": {
            "handlers": {
                "json_file": {
                    "class": "logging.FileHandler",
                    "filename": str(path),
                    "formatter": "json",
                    "level": "INFO",
                }
            },
            "formatters": {"json": json_formatter_config("dagster-run")},
        },
    }

    @asset
    def logged_asset(context) -> None:
        context.log.info("drained 10 messages")
        logging.getLogger("latam_dagster.ingest.drain").warning(
            "quarantined", extra={"message_id": "m-9"}
        )

    with instance_for_test(overrides={"python_logs": python_logs}) as instance:
        result = materialize([logged_asset], instance=instance)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines and all(line["run_id"] == result.run_id for line in lines)
    mine = next(line for line in lines if line["message"] == "drained 10 messages")
    assert mine["service"] == "dagster-run" and mine["step"] == "logged_asset"
    managed = next(line for line in lines if line["message"] == "quarantined")
    assert managed["message_id"] == "m-9"


def test_api_requests_get_an_id_and_an_access_line(captured):
    app = Flask("probe")
    init_request_logging(app)

    @app.get("/api/v1/things/<thing>")
    def thing(thing: str):
        logging.getLogger("api_service").info("looking up %s", thing)
        return {"thing": thing}

    client = app.test_client()
    response = client.get("/api/v1/things/a?limit=5", headers={HEADER: "req-123"})
    assert response.headers[HEADER] == "req-123"
    fresh = client.get("/api/v1/things/b", headers={HEADER: "bad id with spaces"})
    assert fresh.headers[HEADER] != "bad id with spaces" and len(fresh.headers[HEADER]) == 32
    lines = _lines(captured)
    lookup = next(line for line in lines if line["message"] == "looking up a")
    assert lookup["request_id"] == "req-123"
    access = [line for line in lines if line["logger"] == "latam.access"]
    assert access[0]["request_id"] == "req-123"
    assert access[0]["route"] == "/api/v1/things/<thing>" and access[0]["status"] == 200
    assert access[0]["duration_ms"] >= 0
    assert access[0]["query"] == "limit=5" and access[0]["api_key"] is None
    assert access[1]["request_id"] == fresh.headers[HEADER]
