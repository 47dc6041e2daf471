"""Shared fixtures: every test gets its own warehouse database and its own RabbitMQ names.

Integration tests talk to the real Postgres and RabbitMQ of the machine. Isolation:
- Postgres: one database per test, cloned from a migrated template made once per session;
- RabbitMQ: one vhost per session (created with rabbitmqctl when available, else `/`) and a
  unique topology prefix per test, deleted afterwards.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg2
import pytest

from bench import harness
from latam_dagster.db import migrate
from latam_dagster.ingest.topology import Topology, declare_topology, delete_topology

PG_ADMIN_URL = os.environ.get("LATAM_TEST_PG_URL", "postgresql://postgres@localhost:5432/postgres")
AMQP_BASE_URL = os.environ.get("LATAM_TEST_AMQP_URL", "amqp://guest:guest@localhost:5672/%2F")
RUN_ID = uuid.uuid4().hex[:8]
ROOT = Path(__file__).resolve().parents[1]
"""The repository's root directory."""
LATAM = str(Path(sys.executable).parent / "latam")
"""The `latam` command installed beside this Python."""


def _db_url(name: str) -> str:
    return harness.with_database(PG_ADMIN_URL, name)


def _admin_exec(sql: str) -> None:
    harness.admin_exec(PG_ADMIN_URL, sql)


def drop_database(name: str) -> None:
    harness.drop_database(PG_ADMIN_URL, name)


@pytest.fixture(scope="session")
def template_db() -> Iterator[str]:
    """A migrated database that per-test databases are cloned from."""
    name = f"latam_tpl_{RUN_ID}"
    drop_database(name)
    migrate(_db_url(name))
    yield name
    drop_database(name)


@pytest.fixture
def warehouse_url(template_db: str) -> Iterator[str]:
    """URL of a fresh, migrated warehouse database owned by this test alone."""
    name = f"latam_t_{RUN_ID}_{uuid.uuid4().hex[:8]}"
    _admin_exec(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
    yield _db_url(name)
    drop_database(name)


@pytest.fixture(scope="module")
def airports_db(template_db: str) -> Iterator[str]:
    """A template database: the migrated template plus curated.dim_airport, made once a module."""
    from tests.transform_helpers import airports_template

    with airports_template(template_db) as name:
        yield name


@pytest.fixture
def warehouse(airports_db: str) -> Iterator[str]:
    """URL of a fresh warehouse of this test alone with the airports loaded: flights between
    known airports get past the audit."""
    from tests.transform_helpers import cloned_database

    with cloned_database(airports_db) as url:
        yield url


@pytest.fixture
def report_env(warehouse_url: str, tmp_path, monkeypatch) -> str:
    """A fresh warehouse (its URL) and the environment the `latam` commands read pointing at it:
    the warehouse, the quality history and the Data Docs directories."""
    monkeypatch.setenv("LATAM_WAREHOUSE_URL", warehouse_url)
    monkeypatch.setenv("LATAM_QUALITY_DIR", str(tmp_path / "quality"))
    monkeypatch.setenv("LATAM_QUALITY_DOCS_DIR", str(tmp_path / "data_docs"))
    return warehouse_url


@pytest.fixture
def empty_db_url() -> Iterator[str]:
    """URL of a database name that does not exist yet (for create-on-first-use tests)."""
    name = f"latam_e_{RUN_ID}_{uuid.uuid4().hex[:8]}"
    yield _db_url(name)
    drop_database(name)


def _rabbitmqctl(*args: str) -> bool:
    exe = shutil.which("rabbitmqctl")
    if not exe:
        return False
    proc = subprocess.run([exe, *args], capture_output=True, text=True, timeout=60)
    return proc.returncode == 0


@pytest.fixture(scope="session")
def amqp_url() -> Iterator[str]:
    """A vhost of our own for this session when rabbitmqctl can make one, else the base URL."""
    vhost = f"latam-test-{RUN_ID}"
    if _rabbitmqctl("add_vhost", vhost) and _rabbitmqctl(
        "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"
    ):
        parts = urlsplit(AMQP_BASE_URL)
        yield urlunsplit(parts._replace(path="/" + quote(vhost, safe="")))
        _rabbitmqctl("delete_vhost", vhost)
    else:
        yield AMQP_BASE_URL


@pytest.fixture
def topology(amqp_url: str) -> Iterator[Topology]:
    """A declared topology with names unique to this test; deleted afterwards."""
    topo = Topology(prefix=f"t{uuid.uuid4().hex[:10]}")
    declare_topology(amqp_url, topo)
    yield topo
    delete_topology(amqp_url, topo)


def query(url: str, sql: str, params: tuple = ()) -> list[tuple]:
    """Run one query against a test database and return all rows."""
    conn = psycopg2.connect(url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()
