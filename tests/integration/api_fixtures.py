"""Fixtures of the API tests, loaded as a pytest plugin so that session fixtures exist once.

Two warehouses, each a database of its own, made once per session and only when a test needs it:
- `seeded_warehouse`: the small dataset of `tests.integration.api_data`, written directly into a
  freshly migrated database (no broker, no transforms). Tests of the API's own behaviour use it
  and compute what the API must answer from `api_data`.
- `pipeline_warehouse`: filled the way production fills it: simulated events are published to
  RabbitMQ, drained into raw, and the curated tables and marts are built by the pipeline's own
  transforms. Tests that check the API against what the pipeline produced use it.

A module's API reads `api_warehouse`, the seeded one unless the module overrides that fixture
with the pipeline's; the app, its keys and clients are made per module on top of it, as the
read-only role, exactly as `latam api` reads. Test modules declare
`pytest_plugins = ["tests.integration.api_fixtures"]`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from api_service import create_app
from api_service.auth import SCOPES, create_key
from api_service.config import READ_ONLY_ROLE, ApiConfig, get_api_config, role_url
from latam_dagster.db import connection, migrate
from latam_dagster.ingest.drain import DrainConfig, drain_queue
from latam_dagster.ingest.publish import PERSISTENT
from latam_dagster.ingest.topology import (
    QUEUES,
    Topology,
    declare_topology,
    delete_topology,
    open_connection,
    queue_depths,
)
from latam_dagster.simulator import generate
from tests.conftest import RUN_ID, _admin_exec, _db_url, drop_database
from tests.integration.api_data import ApiDataset, build_dataset, insert_dataset, write_data_docs

SEED = 20261127
EVENTS = 12_000
SYSTEMS = 8


def build_downstream(url: str) -> None:
    """Curated tables, event history view and marts from raw, with the pipeline's transforms."""
    from latam_dagster.assets.curated import apply_flight_event_history
    from latam_dagster.transform.airports import load_dim_airport
    from latam_dagster.transform.full_refresh import full_refresh

    load_dim_airport(url)
    full_refresh(url)
    apply_flight_event_history(url)


def fill_warehouse(url: str, amqp_url: str) -> int:
    """Publish simulated events, drain every queue into raw, build downstream. Returns events."""
    topo = Topology(prefix=f"api{uuid.uuid4().hex[:8]}")
    declare_topology(amqp_url, topo)
    try:
        published = publish_fast(amqp_url, topo)
        config = DrainConfig(batch_size=2000, prefetch=4000, max_seconds=120, idle_seconds=0.5)
        for family in QUEUES:
            drain_queue(amqp_url, url, topo, family, config)
    finally:
        delete_topology(amqp_url, topo)
    build_downstream(url)
    return published


def publish_fast(amqp_url: str, topo: Topology) -> int:
    """Publish the simulated messages without per-message confirms, then wait until the queues
    hold them all (per-message confirms would take most of the fixture's time)."""
    conn = open_connection(amqp_url)
    published = 0
    try:
        channel = conn.channel()
        for msg in generate(SEED, systems=SYSTEMS, events=EVENTS, duplicate_share=0.02):
            channel.basic_publish(topo.exchange, msg.routing_key, msg.body, PERSISTENT)
            published += 1
        # one round trip on the same channel: the broker has handled every publish before it
        # answers, so closing now cannot drop the last ones still in flight
        channel.exchange_declare(topo.exchange, passive=True)
    finally:
        conn.close()
    deadline = time.monotonic() + 60
    while sum(queue_depths(amqp_url, topo).values()) < published:
        if time.monotonic() > deadline:
            raise AssertionError(f"the broker did not take all {published} messages")
        time.sleep(0.1)
    return published


@contextmanager
def own_database(prefix: str, template: str | None = None) -> Iterator[str]:
    """URL of a new database of this session: a clone of `template`, else freshly migrated.
    Dropped afterwards, whatever happened."""
    name = f"{prefix}_{RUN_ID}_{uuid.uuid4().hex[:6]}"
    url = _db_url(name)
    try:
        if template:
            _admin_exec(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        else:
            migrate(url)
        yield url
    finally:
        drop_database(name)


@dataclass
class ApiWarehouse:
    """A warehouse the API reads: owner URL (for comparisons and keys), read-only URL (what the
    API uses) and the Data Docs folder it serves."""

    owner_url: str
    data_docs_dir: Path

    @property
    def reader_url(self) -> str:
        return role_url(self.owner_url, READ_ONLY_ROLE)


def reader_config(warehouse: ApiWarehouse, **settings: object) -> ApiConfig:
    """The API's settings over `warehouse`: read as the read-only role, keys looked up on every
    request (a revoked key is refused at once)."""
    return get_api_config(
        database_url=warehouse.reader_url,
        key_cache_seconds=0.0,
        data_docs_dir=str(warehouse.data_docs_dir),
        **settings,
    )


@contextmanager
def running_app(config: ApiConfig) -> Iterator[Flask]:
    """The API app of `config`; its database pool is closed afterwards."""
    app = create_app(config)
    try:
        yield app
    finally:
        app.extensions["latam_api"].db.close()


def new_api_key(owner_url: str, scopes: list[str] | None = None, name: str | None = None) -> str:
    """A new API key stored in the warehouse (as the owner, like `latam api-key create`)."""
    with connection(owner_url) as conn:
        return create_key(conn, name or f"t{uuid.uuid4().hex[:10]}", scopes or list(SCOPES))


@pytest.fixture(scope="session")
def pipeline_warehouse(amqp_url: str, tmp_path_factory) -> Iterator[ApiWarehouse]:
    """Filled by the pipeline from 12,000 simulated events (no validation has run on it)."""
    with own_database("latam_api") as url:
        fill_warehouse(url, amqp_url)
        yield ApiWarehouse(url, tmp_path_factory.mktemp("pipeline_data_docs"))


@pytest.fixture(scope="session")
def api_data() -> ApiDataset:
    return build_dataset()


@pytest.fixture(scope="session")
def seeded_warehouse(api_data: ApiDataset, tmp_path_factory) -> Iterator[ApiWarehouse]:
    """`api_data` written directly, with a Data Docs site of its validations."""
    with own_database("latam_apid") as url:
        insert_dataset(url, api_data)
        yield ApiWarehouse(url, write_data_docs(tmp_path_factory.mktemp("data_docs"), api_data))


@pytest.fixture(scope="module")
def api_warehouse(seeded_warehouse: ApiWarehouse) -> ApiWarehouse:
    """The warehouse this module's API reads; a module overrides it to read another."""
    return seeded_warehouse


@pytest.fixture(scope="module")
def api_config(api_warehouse: ApiWarehouse) -> ApiConfig:
    return reader_config(api_warehouse, cursor_secret="test-cursor-secret", testing=True)


@pytest.fixture(scope="module")
def api_app(api_config: ApiConfig) -> Iterator[Flask]:
    with running_app(api_config) as app:
        yield app


@pytest.fixture(scope="module")
def make_key(api_warehouse: ApiWarehouse):
    """`make_key(scopes=None, name=None)` -> a new key in the module's warehouse."""

    def make(scopes: list[str] | None = None, name: str | None = None) -> str:
        return new_api_key(api_warehouse.owner_url, scopes, name)

    return make


@pytest.fixture(scope="module")
def api_key(make_key) -> str:
    return make_key()


class AuthedClient:
    """A Flask test client that sends the bearer key with every request."""

    def __init__(self, client: FlaskClient, key: str):
        self.client = client
        self.key = key

    def get(self, url: str, headers: dict[str, str] | None = None, **kwargs):
        return self.client.get(
            url, headers={"Authorization": f"Bearer {self.key}", **(headers or {})}, **kwargs
        )


@pytest.fixture(scope="module")
def client(api_app, api_key: str) -> AuthedClient:
    return AuthedClient(api_app.test_client(), api_key)


@pytest.fixture(scope="module")
def anon_client(api_app) -> FlaskClient:
    return api_app.test_client()
