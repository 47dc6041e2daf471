"""Fixtures of the API tests, loaded as a pytest plugin so that session fixtures exist once.

One warehouse for the whole session is filled the way production fills it: simulated events are
published to RabbitMQ, drained into raw, and the curated tables and marts are built by the
pipeline's own transforms. The API reads it as the read-only role, exactly as `latam api` does.
Test modules declare `pytest_plugins = ["tests.integration.api_fixtures"]`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
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
from tests.conftest import RUN_ID, _db_url, drop_database

SEED = 20261127
EVENTS = 12_000
SYSTEMS = 8
QUALITY_SUITES = ("curated.fact_flight", "marts.route_daily_performance", "curated.fact_flight")


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


def validate_quality(url: str, quality_dir: Path) -> Path:
    """Run data-quality suites as the pipeline does (history in quality.*, Data Docs built).
    fact_flight is validated twice so its checks have a history. Returns the Data Docs folder."""
    from latam_dagster.quality.gx_resource import GreatExpectationsResource
    from latam_dagster.quality.suites import suite_by_name

    docs = quality_dir / "data_docs"
    gx = GreatExpectationsResource(
        warehouse_url=url, quality_dir=str(quality_dir), data_docs_dir=str(docs)
    )
    for name in QUALITY_SUITES:
        gx.validate(suite_by_name(name))
    return docs


@dataclass
class ApiWarehouse:
    """The filled warehouse: owner URL (for comparisons) and read-only URL (what the API uses)."""

    owner_url: str
    reader_url: str
    data_docs_dir: Path


@pytest.fixture(scope="session")
def api_warehouse(amqp_url: str, tmp_path_factory) -> Iterator[ApiWarehouse]:
    name = f"latam_api_{RUN_ID}"
    drop_database(name)
    url = _db_url(name)
    migrate(url)
    fill_warehouse(url, amqp_url)
    docs = validate_quality(url, tmp_path_factory.mktemp("quality"))
    yield ApiWarehouse(url, role_url(url, READ_ONLY_ROLE), docs)
    drop_database(name)


@pytest.fixture(scope="session")
def api_config(api_warehouse: ApiWarehouse) -> ApiConfig:
    return get_api_config(
        database_url=api_warehouse.reader_url,
        cursor_secret="test-cursor-secret",
        key_cache_seconds=0.0,
        data_docs_dir=str(api_warehouse.data_docs_dir),
        testing=True,
    )


@pytest.fixture(scope="session")
def api_app(api_config: ApiConfig):
    app = create_app(api_config)
    yield app
    app.extensions["latam_api"].db.close()


def new_api_key(owner_url: str, scopes: list[str] | None = None, name: str | None = None) -> str:
    """A new API key stored in the warehouse (as the owner, like `latam api-key create`)."""
    with connection(owner_url) as conn:
        return create_key(conn, name or f"t{uuid.uuid4().hex[:10]}", scopes or list(SCOPES))


@pytest.fixture(scope="session")
def make_key(api_warehouse: ApiWarehouse):
    """`make_key(scopes=None, name=None)` -> a new key in the session warehouse."""

    def make(scopes: list[str] | None = None, name: str | None = None) -> str:
        return new_api_key(api_warehouse.owner_url, scopes, name)

    return make


@pytest.fixture(scope="session")
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


@pytest.fixture(scope="session")
def client(api_app, api_key: str) -> AuthedClient:
    return AuthedClient(api_app.test_client(), api_key)


@pytest.fixture(scope="session")
def anon_client(api_app) -> FlaskClient:
    return api_app.test_client()
