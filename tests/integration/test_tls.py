"""TLS on the platform's links to RabbitMQ and PostgreSQL, tested against real servers.

Every server here is the test's own, on loopback and free ports, and accepts TLS only: a RabbitMQ
node whose one listener is AMQPS and a PostgreSQL cluster whose pg_hba.conf admits `hostssl`
connections only (tests/tls_support.py). A second node and a second cluster present a certificate
signed by the same CA for another host name. The certificates come from a throwaway CA made for
the test module; a second CA, which signs nothing these servers present, stands for a wrong
trust store.

What is proven:
- events published and drained over amqps:// (the platform's publisher and drain, with its
  writes going to the warehouse over sslmode=verify-full) arrive in the raw tables;
- the AMQP client refuses a broker whose certificate its CA file does not vouch for, or that
  names another host, with an error saying so; without LATAM_RABBITMQ_CA_FILE it trusts only the
  system's CAs;
- Postgres URLs keep sslmode/sslrootcert on every form the platform derives (psycopg2,
  SQLAlchemy as Great Expectations gets it), the sessions are SSL (pg_stat_ssl), `latam migrate`
  works over such a URL, and a wrong CA or host name is refused;
- with LATAM_ENV=production, plain AMQP and Postgres URLs without sslmode=verify-full are
  refused before any connection, unless LATAM_ALLOW_PLAINTEXT_LOOPBACK allows them on loopback.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
import sqlalchemy

from latam_dagster import db
from latam_dagster.ingest.publish import Publisher
from latam_dagster.ingest.topology import (
    BrokerUnavailable,
    Topology,
    declare_topology,
    delete_topology,
    open_connection,
)
from latam_dagster.settings import Settings, normalize_pg_url
from tests.conftest import AMQP_BASE_URL, PG_ADMIN_URL
from tests.integration.ingest_helpers import (
    RAW_TABLES,
    drain_all,
    make_flight_event,
    make_passenger_event,
    make_position_event,
    publish_events,
)
from tests.tls_support import (
    PgCluster,
    Pki,
    RabbitNode,
    make_pki,
    postgres_cluster,
    rabbitmq_nodes,
    scratch_dir,
)

pytestmark = pytest.mark.integration

LATAM = str(Path(sys.executable).parent / "latam")
SSL_SESSION = "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
MAKERS = (make_flight_event, make_passenger_event, make_position_event)


# --- servers, one of each per module ----------------------------------------------------------


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    with scratch_dir() as path:
        yield path


@pytest.fixture(scope="module")
def pki(workdir: Path) -> Pki:
    return make_pki(workdir / "pki")


@pytest.fixture(scope="module")
def brokers(workdir: Path, pki: Pki) -> Iterator[list[RabbitNode]]:
    """Two TLS-only RabbitMQ nodes, started together: one presents a certificate for 127.0.0.1
    and localhost, the other one signed by the same CA for another host name."""
    with rabbitmq_nodes(
        workdir / "rabbit",
        pki.ca_cert,
        (pki.server_cert, pki.server_key),
        (pki.wrong_host_cert, pki.wrong_host_key),
    ) as nodes:
        yield nodes


@pytest.fixture(scope="module")
def broker(brokers: list[RabbitNode]) -> RabbitNode:
    return brokers[0]


@pytest.fixture(scope="module")
def wrong_host_broker(brokers: list[RabbitNode]) -> RabbitNode:
    return brokers[1]


@pytest.fixture(scope="module")
def pg(workdir: Path, pki: Pki) -> Iterator[PgCluster]:
    """A TLS-only Postgres cluster presenting a certificate for 127.0.0.1 and localhost."""
    with postgres_cluster(workdir / "pg", pki.server_cert, pki.server_key) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def wrong_host_pg(workdir: Path, pki: Pki) -> Iterator[PgCluster]:
    """A TLS-only cluster whose certificate (signed by the trusted CA) names another host."""
    with postgres_cluster(workdir / "pg-wrong", pki.wrong_host_cert, pki.wrong_host_key) as c:
        yield c


def verify_full(cluster: PgCluster, ca: Path, database: str = "postgres", **kw: str) -> str:
    return cluster.url(database, sslmode="verify-full", sslrootcert=str(ca), **kw)


@pytest.fixture(scope="module")
def tls_warehouse(pg: PgCluster, pki: Pki) -> str:
    """A migrated warehouse on the TLS cluster, as a verify-full URL."""
    url = verify_full(pg, pki.ca_cert, "latam_tls")
    db.migrate(url)
    return url


@pytest.fixture
def trust_test_ca(monkeypatch: pytest.MonkeyPatch, pki: Pki) -> Pki:
    """The platform trusts the test CA for amqps:// (LATAM_RABBITMQ_CA_FILE)."""
    monkeypatch.setenv("LATAM_RABBITMQ_CA_FILE", str(pki.ca_cert))
    return pki


@pytest.fixture
def production(monkeypatch: pytest.MonkeyPatch) -> None:
    """LATAM_ENV=production."""
    monkeypatch.setenv("LATAM_ENV", "production")
    monkeypatch.delenv("LATAM_ALLOW_PLAINTEXT_LOOPBACK", raising=False)


def rows(url: str, sql: str) -> list[tuple]:
    """Every row of `sql`, through the platform's own connect."""
    conn = db.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall()
    finally:
        conn.close()


def one_row(url: str, sql: str) -> tuple:
    return rows(url, sql)[0]


# --- RabbitMQ over TLS ---------------------------------------------------------------------------


def test_events_published_and_drained_over_amqps(
    broker: RabbitNode, tls_warehouse: str, trust_test_ca: Pki
):
    """The platform's publisher and drain over amqps://, into a warehouse over verify-full."""
    url = broker.url()
    topo = Topology(prefix=f"tls{uuid.uuid4().hex[:8]}")
    declare_topology(url, topo)
    try:
        events = [make() for _ in range(2) for make in MAKERS]
        assert publish_events(url, topo, events) == 6

        stats = drain_all(url, tls_warehouse, topo)

        assert sum(s.inserted for s in stats) == 6
        assert sum(s.quarantined + s.duplicates for s in stats) == 0
        stored = {
            str(message_id)
            for table in RAW_TABLES
            for (message_id,) in rows(tls_warehouse, f"SELECT message_id FROM {table}")
        }
        assert stored == {e["message_id"] for e in events}
    finally:
        delete_topology(url, topo)


def test_amqps_connection_is_tls_on_the_broker(broker: RabbitNode, trust_test_ca: Pki):
    """The broker itself reports the platform's connection as TLS; `localhost` (a DNS SAN) and
    127.0.0.1 (an IP SAN) both verify."""
    for host in ("127.0.0.1", "localhost"):
        conn = open_connection(broker.url(host))
        try:
            listing = broker.ctl("list_connections", "ssl", "ssl_protocol", "peer_host")
        finally:
            conn.close()
        rows = [line.split("\t") for line in listing.splitlines()[1:] if line.strip()]
        assert rows and all(row[0] == "true" for row in rows), listing
        assert {row[1] for row in rows} <= {"tlsv1.2", "tlsv1.3"}, listing


def test_amqps_refuses_a_ca_that_did_not_sign_the_broker(
    broker: RabbitNode, monkeypatch: pytest.MonkeyPatch, pki: Pki
):
    monkeypatch.setenv("LATAM_RABBITMQ_CA_FILE", str(pki.other_ca_cert))
    with pytest.raises(BrokerUnavailable) as refused:
        open_connection(broker.url())
    message = str(refused.value)
    assert "TLS with RabbitMQ" in message and "certificate verify failed" in message
    assert "LATAM_RABBITMQ_CA_FILE" in message and ":***@" in message
    # the publisher goes through the same door
    with pytest.raises(BrokerUnavailable, match="certificate verify failed"):
        Publisher(broker.url(), Topology(prefix="never"), declare_topology=False)


def test_amqps_without_a_ca_file_trusts_only_the_system_cas(
    broker: RabbitNode, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.delenv("LATAM_RABBITMQ_CA_FILE", raising=False)
    with pytest.raises(BrokerUnavailable, match="certificate verify failed"):
        open_connection(broker.url())


def test_amqps_refuses_a_certificate_for_another_host(
    wrong_host_broker: RabbitNode, trust_test_ca: Pki
):
    """Signed by the trusted CA, but for another name: refused for an IP and for a DNS name."""
    for host, kind in (("127.0.0.1", "IP address mismatch"), ("localhost", "Hostname mismatch")):
        with pytest.raises(BrokerUnavailable) as refused:
            open_connection(wrong_host_broker.url(host))
        assert kind in str(refused.value) and repr(host) in str(refused.value)


def test_amqps_unreadable_ca_file_is_a_clear_error(
    broker: RabbitNode, monkeypatch: pytest.MonkeyPatch, workdir: Path
):
    missing = workdir / "no-such-ca.pem"
    monkeypatch.setenv("LATAM_RABBITMQ_CA_FILE", str(missing))
    with pytest.raises(BrokerUnavailable, match=f"cannot use LATAM_RABBITMQ_CA_FILE={missing}"):
        open_connection(broker.url())


# --- PostgreSQL with sslmode=verify-full ---------------------------------------------------------


def test_postgres_sessions_are_tls_through_every_url_form(pg: PgCluster, pki: Pki):
    url = verify_full(pg, pki.ca_cert)
    settings = Settings(warehouse_url=url)
    for form in (url, settings.dsn, normalize_pg_url(url)):
        assert "sslmode=verify-full" in form and f"sslrootcert={pki.ca_cert}" in form
    # psycopg2 through the platform's connect, by IP SAN and by DNS SAN
    assert one_row(settings.dsn, SSL_SESSION)[0] is True
    assert one_row(verify_full(pg, pki.ca_cert, host="localhost"), SSL_SESSION)[0] is True
    # SQLAlchemy, as Great Expectations and Dagster's storage get the URL
    engine = sqlalchemy.create_engine(settings.sqlalchemy_url)
    try:
        with engine.connect() as conn:
            ssl, version = conn.execute(sqlalchemy.text(SSL_SESSION)).one()
        assert ssl is True and version in ("TLSv1.2", "TLSv1.3")
    finally:
        engine.dispose()
    # the server itself admits nothing but TLS: a plain session is turned away
    with pytest.raises(psycopg2.OperationalError, match="no encryption"):
        psycopg2.connect(pg.url(sslmode="disable")).close()


def test_great_expectations_reads_the_warehouse_over_tls(tls_warehouse: str, workdir: Path):
    """The quality engine's GX data source gets the URL with its TLS query and uses it."""
    from latam_dagster.quality.engine import EngineConfig, GxEngine

    quality_dir = workdir / "quality"
    engine = GxEngine(
        EngineConfig(
            warehouse_url=tls_warehouse,
            quality_dir=str(quality_dir),
            data_docs_dir=str(quality_dir / "data_docs"),
            build_data_docs=False,
        )
    )
    gx_engine = engine.datasource.get_engine()
    with gx_engine.connect() as conn:
        assert conn.execute(sqlalchemy.text(SSL_SESSION)).one()[0] is True
    gx_engine.dispose()


def test_latam_migrate_over_verify_full(pg: PgCluster, pki: Pki):
    url = verify_full(pg, pki.ca_cert, "latam_cli")
    env = {**os.environ, "LATAM_WAREHOUSE_URL": url}

    first = subprocess.run([LATAM, "migrate"], env=env, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    assert f"warehouse at version {db.code_version():04d}" in first.stdout
    check = subprocess.run([LATAM, "migrate", "--check"], env=env, capture_output=True, text=True)
    assert check.returncode == 0 and "up to date" in check.stdout, check.stderr
    assert db.schema_version(url) == db.code_version()


def test_postgres_refuses_a_ca_that_did_not_sign_the_server(pg: PgCluster, pki: Pki):
    url = verify_full(pg, pki.other_ca_cert)
    with pytest.raises(db.WarehouseUnavailable) as refused:
        db.connect(url)
    message = str(refused.value)
    assert "TLS with PostgreSQL" in message and "certificate verify failed" in message
    with pytest.raises(sqlalchemy.exc.OperationalError, match="certificate verify failed"):
        engine = sqlalchemy.create_engine(normalize_pg_url(url))
        try:
            engine.connect()
        finally:
            engine.dispose()


def test_postgres_refuses_a_certificate_for_another_host(wrong_host_pg: PgCluster, pki: Pki):
    for host in ("127.0.0.1", "localhost"):
        with pytest.raises(db.WarehouseUnavailable) as refused:
            db.connect(verify_full(wrong_host_pg, pki.ca_cert, host=host))
        assert f'does not match host name "{host}"' in str(refused.value)


def test_latam_migrate_reports_a_tls_failure_in_one_line(wrong_host_pg: PgCluster, pki: Pki):
    env = {**os.environ, "LATAM_WAREHOUSE_URL": verify_full(wrong_host_pg, pki.ca_cert)}
    proc = subprocess.run([LATAM, "migrate"], env=env, capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: TLS with PostgreSQL") and "Traceback" not in proc.stderr


# --- production refuses plaintext --------------------------------------------------------------


def test_production_refuses_plain_urls_before_connecting(production: None):
    # where a connection would succeed: the machine's own broker and database
    with pytest.raises(BrokerUnavailable, match="refusing to connect: .* is plain AMQP"):
        open_connection(AMQP_BASE_URL)
    with pytest.raises(db.WarehouseUnavailable, match="refusing to connect: .* has no sslmode"):
        db.connect(PG_ADMIN_URL)
    for weak in ("disable", "prefer", "require", "verify-ca"):
        with pytest.raises(db.WarehouseUnavailable, match=f"has sslmode={weak}"):
            db.connect(f"{PG_ADMIN_URL}?sslmode={weak}")


def test_production_connects_over_tls(
    production: None, broker: RabbitNode, pg: PgCluster, trust_test_ca: Pki
):
    open_connection(broker.url()).close()
    assert one_row(verify_full(pg, trust_test_ca.ca_cert), SSL_SESSION)[0] is True


def test_production_allows_plaintext_on_loopback_only_when_told(
    production: None, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("LATAM_ALLOW_PLAINTEXT_LOOPBACK", "true")
    open_connection(AMQP_BASE_URL).close()  # the machine's broker, on loopback
    assert one_row(PG_ADMIN_URL, "SELECT 1") == (1,)
    # a host that is not loopback stays refused (nothing is contacted: the name does not exist)
    with pytest.raises(BrokerUnavailable, match="is plain AMQP"):
        open_connection("amqp://guest:guest@rabbit.invalid:5672/%2F")
    with pytest.raises(db.WarehouseUnavailable, match="has no sslmode"):
        db.connect("postgresql://postgres@db.invalid:5432/latam")
    # libpq's hostaddr is where it really connects: a loopback name does not hide it
    with pytest.raises(db.WarehouseUnavailable, match="has no sslmode"):
        db.connect("postgresql://postgres@localhost:5432/latam?hostaddr=192.0.2.10")
