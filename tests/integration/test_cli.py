"""The `latam` command end to end: run-once on an empty system, publish, quarantine, doctor."""

import json
import os
import subprocess
import uuid

import orjson
import pytest

from latam_dagster import db
from latam_dagster.ingest.topology import Topology, delete_topology, queue_depths
from tests.conftest import LATAM, PG_ADMIN_URL, RUN_ID, _db_url, drop_database, query
from tests.integration.ingest_helpers import make_flight_event

pytestmark = pytest.mark.integration


@pytest.fixture
def cli_env(empty_db_url, amqp_url, tmp_path):
    """Environment of a system where nothing exists yet: no databases, no queues, no home."""
    prefix = f"cli{uuid.uuid4().hex[:8]}"
    dagster_db = f"latam_d_{RUN_ID}_{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "LATAM_WAREHOUSE_URL": empty_db_url,
        "LATAM_AMQP_URL": amqp_url,
        "LATAM_TOPOLOGY_PREFIX": prefix,
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
        "LATAM_DAGSTER_PG_URL": _db_url(dagster_db),
        "LATAM_DRAIN_IDLE_SECONDS": "0.5",
    }
    yield env
    delete_topology(amqp_url, Topology(prefix))
    drop_database(dagster_db)


def latam(env: dict, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [LATAM, *args], env=env, input=stdin, capture_output=True, timeout=240, check=False
    )


def test_run_once_on_an_empty_system_creates_everything_and_succeeds(cli_env):
    proc = latam(cli_env, "run-once")
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    assert b"run succeeded" in proc.stdout
    tables = query(
        cli_env["LATAM_WAREHOUSE_URL"],
        "SELECT table_schema || '.' || table_name FROM information_schema.tables"
        " WHERE table_schema = 'raw'",
    )
    assert {t for (t,) in tables} >= {
        "raw.flight_events",
        "raw.passenger_events",
        "raw.position_reports",
        "raw.quarantine",
    }
    prefix = cli_env["LATAM_TOPOLOGY_PREFIX"]
    assert set(queue_depths(cli_env["LATAM_AMQP_URL"], Topology(prefix))) == {
        f"{prefix}.flights",
        f"{prefix}.passengers",
        f"{prefix}.positions",
        f"{prefix}.unrouted",
    }
    # recorded in the Dagster instance of DAGSTER_HOME, so it shows in the UI
    runs = query(cli_env["LATAM_DAGSTER_PG_URL"], "SELECT pipeline_name, status FROM runs")
    assert ("pipeline_job", "SUCCESS") in runs


def test_publish_then_run_once_lands_events_and_quarantines_bad_lines(cli_env):
    events = [
        make_flight_event(payload={"status": s}) for s in ("scheduled", "boarding", "departed")
    ]
    lines = b"\n".join(orjson.dumps(e) for e in events) + b"\n"
    bad = b'{"message_id": "not-a-uuid"}\n'
    proc = latam(cli_env, "publish", "-", stdin=lines + bad)
    assert proc.returncode == 1  # the bad line is reported, not published
    assert b"line 4: not published: missing envelope field(s)" in proc.stderr
    assert b"published 3 event(s), rejected 1" in proc.stdout
    proc = latam(cli_env, "publish", "--no-validate", "-", stdin=bad)
    assert proc.returncode == 0
    proc = latam(cli_env, "run-once", "--json")
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    report = json.loads(proc.stdout)
    flights = next(s for s in report["steps"] if s["asset"] == "raw/flight_events")
    assert flights["metadata"]["inserted"] == 3
    # no event_type, so no routing key matches: the alternate exchange keeps it for the quarantine
    unrouted = next(s for s in report["steps"] if s["asset"] == "raw/unrouted")
    assert unrouted["metadata"]["quarantined"] == 1
    rows = query(cli_env["LATAM_WAREHOUSE_URL"], "SELECT status FROM raw.flight_events")
    assert sorted(r[0] for r in rows) == ["boarding", "departed", "scheduled"]
    proc = latam(cli_env, "quarantine", "list", "--json")
    listed = json.loads(proc.stdout)
    assert len(listed) == 1 and "missing envelope field" in listed[0]["reason"]


def test_quarantine_replay_after_a_fix_moves_rows_to_raw(cli_env):
    big = make_flight_event()
    body = orjson.dumps(big)
    env = {**cli_env, "LATAM_MAX_MESSAGE_BYTES": "64"}  # a limit too small: everything is bad
    assert latam(env, "publish", "--no-validate", "-", stdin=body + b"\n").returncode == 0
    assert latam(env, "run-once").returncode == 0
    url = cli_env["LATAM_WAREHOUSE_URL"]
    assert query(url, "SELECT count(*) FROM raw.flight_events") == [(0,)]
    proc = latam(env, "quarantine", "replay", "--dry-run")
    assert b"still invalid 1" in proc.stdout
    # the fix: a sensible limit; replay moves the row to raw and marks it replayed
    proc = latam(cli_env, "quarantine", "replay")
    assert b"examined 1, inserted 1" in proc.stdout, proc.stdout
    assert query(url, "SELECT message_id::text FROM raw.flight_events") == [(big["message_id"],)]
    assert query(url, "SELECT replay_result FROM raw.quarantine") == [("inserted",)]
    proc = latam(cli_env, "quarantine", "replay")
    assert b"examined 0" in proc.stdout  # replayed rows are not replayed twice


def test_a_read_only_server_is_not_reported_as_unreachable():
    """A URL that wants a writable server (the drain's, during a failover) and reaches only a
    read-only one says so, instead of advising to start a server that is running."""
    sep = "&" if "?" in PG_ADMIN_URL else "?"
    read_only = (
        f"{PG_ADMIN_URL}{sep}target_session_attrs=read-write"
        "&options=-c%20default_transaction_read_only%3Don"  # what a hot standby reports
    )
    with pytest.raises(db.WarehouseUnavailable) as caught:
        db.connect(read_only)
    message = str(caught.value)
    assert "no server there accepts writes" in message
    assert "session is read-only" in message
    assert "not reachable" not in message and "pg_ctlcluster" not in message
    db.connect(PG_ADMIN_URL).close()  # the same server, without the requirement: fine


def test_doctor_says_which_service_is_missing_and_how_to_start_it(cli_env):
    env = {
        **cli_env,
        "LATAM_WAREHOUSE_URL": "postgresql://postgres@127.0.0.1:1/latam",
        "LATAM_AMQP_URL": "amqp://guest:guest@127.0.0.1:2/%2F",
    }
    proc = latam(env, "doctor")
    err = proc.stderr.decode()
    assert proc.returncode == 2
    assert "PostgreSQL is not reachable at postgresql://postgres@127.0.0.1:1/postgres" in err
    assert "pg_ctlcluster" in err
    assert "RabbitMQ is not reachable at amqp://guest:***@127.0.0.1:2/%2F" in err
    assert "rabbitmq-server -detached" in err
    proc = latam(env, "run-once")
    assert proc.returncode == 2
    assert "PostgreSQL is not reachable" in proc.stderr.decode()
