"""Secrets fail closed, may come from files, and the PII hash key stays out of every statement.

- With LATAM_ENV=production every process (the Dagster code location, `latam api`, `latam
  exporter`, the `latam` commands that write) refuses to start on a missing or default secret it
  needs: exit status 2, one line on stderr naming the setting, never a value.
- `X_FILE` names a file holding the secret X.
- The PII hash key reaches the hashing SQL without being part of any statement, and a process with
  another key than the warehouse's cannot write passenger data.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import subprocess
import sys
from pathlib import Path

import psycopg2.errors
import pytest

from latam_dagster.settings import DEV_SECRET, PIPELINE_ROLE, role_url
from tests.conftest import LATAM, _admin_exec, query
from tests.integration.ingest_helpers import apply_changes, make_passenger_event
from tests.transform_helpers import write_raw

FINGERPRINT_LABEL = b"latam.pii_hash_key fingerprint"

# One value per secret, each a marker that must never show in any output.
GOOD = {
    "LATAM_PII_HASH_KEY": "pii-key-marker-3f9a",
    "LATAM_API_CURSOR_SECRET": "cursor-marker-77b1",
    "LATAM_WAREHOUSE_URL": "postgresql://postgres:owner-marker-12@127.0.0.1:5432/latam_not_used",
    "LATAM_PIPELINE_DATABASE_PASSWORD": "pipeline-marker-9c",
    "LATAM_API_DATABASE_PASSWORD": "api-marker-5e",
    "LATAM_EXPORTER_DATABASE_PASSWORD": "exporter-marker-2d",
    "LATAM_AMQP_URL": "amqp://latam:broker-marker-4a@127.0.0.1:5672/%2F",
    "LATAM_DAGSTER_PG_URL": "postgresql://postgres:dagster-marker-8f@127.0.0.1:5432/latam_nu",
}
MARKERS = ["marker", DEV_SECRET, "guest:guest"]
UNSET = None


def production_env(**changes: str | None) -> dict[str, str]:
    """The environment of a production process with every secret set, then `changes` (None
    unsets a variable). Plain links to loopback are accepted, which the tests' services are."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LATAM_", "PG"))}
    env.update(GOOD, LATAM_ENV="production", LATAM_ALLOW_PLAINTEXT_LOOPBACK="1")
    return apply_changes(env, changes, drop=UNSET)


CODE_LOCATION = [sys.executable, "-c", "import latam_dagster.definitions"]
API = [LATAM, "api", "--port", "1"]
EXPORTER = [LATAM, "exporter", "--once"]
REFUSALS = [
    # (process, changed variables, the setting the line names)
    (API, {"LATAM_API_CURSOR_SECRET": UNSET}, "LATAM_API_CURSOR_SECRET"),
    (API, {"LATAM_API_CURSOR_SECRET": DEV_SECRET}, "LATAM_API_CURSOR_SECRET"),
    (API, {"LATAM_API_DATABASE_PASSWORD": UNSET}, "LATAM_API_DATABASE_PASSWORD"),
    (
        API,
        {"LATAM_API_DATABASE_URL": "postgresql://latam_api_reader@127.0.0.1/latam"},
        "LATAM_API_DATABASE_URL",
    ),
    (EXPORTER, {"LATAM_EXPORTER_DATABASE_PASSWORD": UNSET}, "LATAM_EXPORTER_DATABASE_PASSWORD"),
    (EXPORTER, {"LATAM_AMQP_URL": "amqp://guest:guest@127.0.0.1:5672/%2F"}, "LATAM_AMQP_URL"),
    (EXPORTER, {"LATAM_AMQP_URL": "amqp://127.0.0.1:5672/%2F"}, "LATAM_AMQP_URL"),
    (
        EXPORTER,
        {"LATAM_RABBITMQ_MANAGEMENT_URL": "http://guest:guest@127.0.0.1:15672"},
        "LATAM_RABBITMQ_MANAGEMENT_URL",
    ),
    (
        EXPORTER,
        {"LATAM_DAGSTER_PG_URL": "postgresql://postgres@127.0.0.1/latam_dagster"},
        "LATAM_DAGSTER_PG_URL",
    ),
    (CODE_LOCATION, {"LATAM_PII_HASH_KEY": UNSET}, "LATAM_PII_HASH_KEY"),
    (CODE_LOCATION, {"LATAM_PII_HASH_KEY": DEV_SECRET}, "LATAM_PII_HASH_KEY"),
    (
        CODE_LOCATION,
        {"LATAM_PIPELINE_DATABASE_PASSWORD": UNSET},
        "LATAM_PIPELINE_DATABASE_PASSWORD",
    ),
    (CODE_LOCATION, {"LATAM_AMQP_URL": UNSET}, "LATAM_AMQP_URL"),
    (
        CODE_LOCATION,
        {"LATAM_DAGSTER_PG_URL": "postgresql://postgres@127.0.0.1/latam_dagster"},
        "LATAM_DAGSTER_PG_URL",
    ),
    (
        [LATAM, "migrate"],
        {"LATAM_WAREHOUSE_URL": "postgresql://postgres@127.0.0.1/latam"},
        "LATAM_WAREHOUSE_URL",
    ),
    ([LATAM, "migrate"], {"LATAM_WAREHOUSE_URL": UNSET}, "LATAM_WAREHOUSE_URL"),
    ([LATAM, "publish", "-"], {"LATAM_AMQP_URL": UNSET}, "LATAM_AMQP_URL"),
    ([LATAM, "run-once"], {"LATAM_PII_HASH_KEY": UNSET}, "LATAM_PII_HASH_KEY"),
    (
        [LATAM, "api-key", "create", "--name", "x"],
        {"LATAM_WAREHOUSE_URL": "postgresql://postgres@127.0.0.1/latam"},
        "LATAM_WAREHOUSE_URL",
    ),
    (
        [LATAM, "dead", "replay"],
        {"LATAM_AMQP_URL": "amqp://guest:guest@localhost:5672/%2F"},
        "LATAM_AMQP_URL",
    ),
]


def _case_id(case) -> str:
    argv, changes, _ = case
    process = "code-location" if argv is CODE_LOCATION else " ".join(argv[1:3])
    return f"{process}:{','.join(f'{k}={v is not None}' for k, v in changes.items())}"


def _assert_one_line_naming(proc: subprocess.CompletedProcess, setting: str) -> None:
    lines = proc.stderr.splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1, proc.stderr
    assert setting in lines[0] and lines[0].startswith("error: "), lines[0]
    for marker in MARKERS:
        assert marker not in proc.stderr + proc.stdout


@pytest.mark.parametrize("case", REFUSALS, ids=_case_id)
def test_production_refuses_a_missing_or_default_secret_in_one_line(case):
    argv, changes, setting = case
    proc = subprocess.run(
        argv,
        env=production_env(**changes),
        input="",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    _assert_one_line_naming(proc, setting)


def test_production_names_every_wrong_setting_on_the_one_line():
    proc = subprocess.run(
        CODE_LOCATION,
        env=production_env(LATAM_PII_HASH_KEY=UNSET, LATAM_AMQP_URL=UNSET),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    _assert_one_line_naming(proc, "LATAM_PII_HASH_KEY")
    assert "LATAM_AMQP_URL" in proc.stderr


def test_an_unknown_environment_is_refused_in_one_line():
    proc = subprocess.run(
        [LATAM, "migrate"],
        env=production_env(LATAM_ENV="prod"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    _assert_one_line_naming(proc, "LATAM_ENV")


def _secret_files(tmp_path: Path, names: list[str]) -> dict[str, str | None]:
    """Move the secrets `names` of GOOD into files (with a trailing newline, as `echo` writes)
    named by their `_FILE` variables."""
    changes: dict[str, str | None] = {}
    for name in names:
        path = tmp_path / name.lower()
        path.write_text(GOOD[name] + "\n")
        changes[name] = UNSET
        changes[f"{name}_FILE"] = str(path)
    return changes


def test_production_starts_with_every_secret_read_from_a_file(tmp_path, empty_db_url):
    owner = empty_db_url.replace("postgres@", "postgres:owner-marker-12@")
    changes = _secret_files(tmp_path, list(GOOD))
    (tmp_path / "latam_warehouse_url").write_text(owner + "\n")
    env = production_env(**changes)
    loaded = subprocess.run(
        CODE_LOCATION, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert loaded.returncode == 0, loaded.stderr
    migrated = subprocess.run(
        [LATAM, "migrate"], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert migrated.returncode == 0, migrated.stderr
    assert query(empty_db_url, "SELECT max(version) FROM public.schema_migrations")[0][0] >= 33
    for marker in MARKERS:
        assert marker not in migrated.stdout + migrated.stderr


def test_a_secret_and_its_file_both_set_are_refused_in_one_line(tmp_path):
    changes = _secret_files(tmp_path, ["LATAM_WAREHOUSE_URL"])
    changes["LATAM_WAREHOUSE_URL"] = GOOD["LATAM_WAREHOUSE_URL"]
    proc = subprocess.run(
        [LATAM, "migrate"],
        env=production_env(**changes),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    _assert_one_line_naming(proc, "LATAM_WAREHOUSE_URL_FILE")


def test_a_missing_secret_file_is_refused_in_one_line(tmp_path):
    proc = subprocess.run(
        CODE_LOCATION,
        env=production_env(LATAM_PII_HASH_KEY=UNSET, LATAM_PII_HASH_KEY_FILE=str(tmp_path / "no")),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    _assert_one_line_naming(proc, "LATAM_PII_HASH_KEY_FILE")


# --- the PII hash key ---------------------------------------------------------------------------


def _hash(key: str, passenger_ref: str) -> str:
    return hmac.new(key.encode(), passenger_ref.encode(), hashlib.sha256).hexdigest()


def _fingerprint(key: str) -> str:
    return hmac.new(key.encode(), FINGERPRINT_LABEL, hashlib.sha256).hexdigest()


def _refs(events: list[dict]) -> list[str]:
    return [e["payload"]["passenger_ref"] for e in events]


def test_the_pii_key_travels_in_no_statement(warehouse_url, monkeypatch):
    """Every statement of a hashing session, as the server's statement log records it, and
    every statement pg_stat_activity shows meanwhile, are free of the key."""
    from latam_dagster.transform.session import transform_transaction
    from latam_dagster.transform.sqlfiles import load_sql

    key = "k3y-in-no-statement with spaces, a \\ backslash, 'quotes' and ünïcode"
    monkeypatch.setenv("LATAM_PII_HASH_KEY", key)
    name = warehouse_url.rsplit("/", 1)[1]
    # the server sends every statement of the database's sessions back to their client as a log
    # message: the pipeline's own connection collects its statement log
    _admin_exec(f"ALTER DATABASE \"{name}\" SET log_statement = 'all'")
    _admin_exec(f"ALTER DATABASE \"{name}\" SET client_min_messages = 'log'")
    pipeline = role_url(warehouse_url, PIPELINE_ROLE)
    events = [make_passenger_event() for _ in range(3)]
    write_raw(pipeline, events)
    with transform_transaction(pipeline, "curated.flight_passenger") as cur:
        cur.execute(load_sql("curated", "flight_passenger"))
        assert cur.rowcount == 3
        activity = query(
            warehouse_url,
            "SELECT coalesce(query, '') FROM pg_stat_activity WHERE datname = current_database()",
        )
        statement_log = list(cur.connection.notices)
    assert any("LOG:  statement:" in line and "pii_hash_key()" in line for line in statement_log)
    shown = "\n".join(statement_log + [q for (q,) in activity])
    assert "k3y" not in shown
    hashes = {
        h for (h,) in query(warehouse_url, "SELECT passenger_hash FROM curated.flight_passenger")
    }
    assert hashes == {_hash(key, ref) for ref in _refs(events)}  # the same hash as ever


def test_the_first_hashing_records_the_key_fingerprint_not_the_key(warehouse_url, monkeypatch):
    from latam_dagster.transform.curated import update_table

    key = "first-key-of-this-warehouse"
    monkeypatch.setenv("LATAM_PII_HASH_KEY", key)
    pipeline = role_url(warehouse_url, PIPELINE_ROLE)
    assert query(warehouse_url, "SELECT count(*) FROM curated.pii_key_fingerprint") == [(0,)]
    write_raw(pipeline, [make_passenger_event()])
    update_table(pipeline, "flight_passenger")
    [(stored,)] = query(warehouse_url, "SELECT fingerprint FROM curated.pii_key_fingerprint")
    assert stored == _fingerprint(key)
    assert stored not in (key, hashlib.sha256(key.encode()).hexdigest())


def test_another_pii_key_refuses_to_write_passenger_data(warehouse_url, monkeypatch):
    from dagster import DagsterInstance, materialize

    from latam_dagster.assets.curated import curated_assets
    from latam_dagster.resources import WarehouseResource
    from latam_dagster.transform.curated import update_table

    pipeline = role_url(warehouse_url, PIPELINE_ROLE)
    monkeypatch.setenv("LATAM_PII_HASH_KEY", "the-warehouse-key")
    first = [make_passenger_event()]
    write_raw(pipeline, first)
    update_table(pipeline, "flight_passenger")
    before = query(warehouse_url, "SELECT * FROM curated.flight_passenger ORDER BY 1, 2")
    marks = query(warehouse_url, "SELECT * FROM curated.watermarks ORDER BY 1, 2")

    monkeypatch.setenv("LATAM_PII_HASH_KEY", "another-key")
    write_raw(pipeline, [make_passenger_event(), make_passenger_event()])
    with pytest.raises(psycopg2.errors.RaiseException, match="refusing to write passenger data"):
        update_table(pipeline, "flight_passenger")
    asset = next(a for a in curated_assets if a.key.path == ["curated", "flight_passenger"])
    with DagsterInstance.ephemeral() as instance:
        result = materialize(
            [asset],
            instance=instance,
            resources={"warehouse": WarehouseResource(url=pipeline)},
            raise_on_error=False,
        )
    assert not result.success
    failure = result.get_step_failure_events()[0].event_specific_data.error.to_string()
    assert "refusing to write passenger data" in failure
    assert "another-key" not in failure
    # nothing was written: the same rows, the same watermarks, the same fingerprint
    assert query(warehouse_url, "SELECT * FROM curated.flight_passenger ORDER BY 1, 2") == before
    assert query(warehouse_url, "SELECT * FROM curated.watermarks ORDER BY 1, 2") == marks
    assert query(warehouse_url, "SELECT fingerprint FROM curated.pii_key_fingerprint") == [
        (_fingerprint("the-warehouse-key"),)
    ]


def test_a_session_without_the_key_cannot_hash(warehouse_url):
    with pytest.raises(psycopg2.errors.RaiseException, match="no PII hash key"):
        query(role_url(warehouse_url, PIPELINE_ROLE), "SELECT curated.pii_hash_key()")
