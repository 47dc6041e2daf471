"""Which URLs production accepts (latam_dagster.tls), and the TLS options amqps:// gets.

The behaviour against real servers is in tests/integration/test_tls.py; these are the rules.
"""

from __future__ import annotations

import ssl

import pytest

from latam_dagster.settings import Settings, libpq_url, normalize_pg_url
from latam_dagster.tls import (
    amqp_ssl_options,
    is_loopback,
    pg_tls_problem,
    plaintext_problem,
    redact,
)

CA_QUERY = "sslmode=verify-full&sslrootcert=/etc/latam/tls/ca.crt"


@pytest.mark.parametrize(
    "url",
    [
        "amqps://u:p@rabbit.example:5671/%2F",
        f"postgresql://u@db.example:5432/latam?{CA_QUERY}",
        f"postgresql+psycopg2://u@db.example/latam?{CA_QUERY}",
        f"postgres://u@db-a.example,db-b.example/latam?{CA_QUERY}",
        "host=db.example dbname=latam sslmode=verify-full",
    ],
)
def test_tls_urls_pass(url):
    assert plaintext_problem(url) is None


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("amqp://u:secret@rabbit.example:5672/%2F", "is plain AMQP"),
        ("amqp://u:secret@127.0.0.1:5672/%2F", "is plain AMQP"),
        ("postgresql://u:secret@db.example/latam", "has no sslmode"),
        ("postgresql://u@localhost/latam", "has no sslmode"),
        ("postgresql://u@db.example/latam?sslmode=require", "has sslmode=require"),
        ("postgresql://u@db.example/latam?sslmode=verify-ca", "has sslmode=verify-ca"),
        ("postgresql://u@db.example/latam?sslmode=prefer", "has sslmode=prefer"),
        ("postgresql://u@db.example/latam?bogus=1", "not a connection URL libpq accepts"),
        ("postgresql://u@db.example/latam?password=secret", "has no sslmode"),
        ("host=db.example password=secret dbname=latam", "has no sslmode"),
    ],
)
def test_plain_urls_are_refused_with_the_reason(url, says):
    problem = plaintext_problem(url)
    assert problem is not None and says in problem
    assert "secret" not in problem  # passwords never show


@pytest.mark.parametrize(
    "url",
    [
        "amqp://guest:guest@localhost:5672/%2F",
        "amqp://guest:guest@127.0.0.1:5672/%2F",
        "amqp://guest:guest@[::1]:5672/%2F",
        "postgresql://postgres@localhost:5432/latam",
        "postgresql://postgres@127.0.0.2:5432/latam?sslmode=disable",
        "postgresql:///latam?host=/var/run/postgresql",
        "postgresql:///latam",
        "postgresql://postgres@localhost,127.0.0.1/latam",
    ],
)
def test_loopback_plaintext_only_when_allowed(url):
    assert plaintext_problem(url) is not None
    assert plaintext_problem(url, allow_plaintext_loopback=True) is None


@pytest.mark.parametrize(
    "url",
    [
        "amqp://guest:guest@rabbit.example:5672/%2F",
        "amqp://guest:guest@0.0.0.0:5672/%2F",
        "postgresql://postgres@localhost,db.example/latam",
        "postgresql://postgres@localhost/latam?hostaddr=192.0.2.10",
    ],
)
def test_allowing_loopback_does_not_allow_other_hosts(url):
    assert plaintext_problem(url, allow_plaintext_loopback=True) is not None


def test_is_loopback():
    for host in ("localhost", "LOCALHOST", "127.0.0.1", "127.1.2.3", "::1", "[::1]", "/tmp", ""):
        assert is_loopback(host), host
    for host in ("0.0.0.0", "10.0.0.1", "db.example", "localhost.example", "::"):
        assert not is_loopback(host), host


def test_every_url_form_keeps_the_tls_query():
    url = f"postgresql://u:p@db.example:5432/latam?{CA_QUERY}"
    settings = Settings(warehouse_url=url, dagster_pg_url=url)
    for form in (settings.dsn, settings.sqlalchemy_url, libpq_url(normalize_pg_url(url))):
        assert form.endswith(f"/latam?{CA_QUERY}"), form


def test_amqps_context_verifies_the_certificate_and_host_name():
    assert amqp_ssl_options("amqp://u:p@rabbit.example/%2F", None) is None
    options = amqp_ssl_options(
        "amqps://u:p@rabbit.example:5671/%2F?ssl_options=%7B%7D", ca_file=None
    )
    assert options is not None and options.server_hostname == "rabbit.example"
    context = options.context
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2


def test_libpq_tls_errors_are_told_apart():
    assert pg_tls_problem('connection to server at "h", port 1 failed: SSL error: x')
    assert pg_tls_problem(
        'connection to server at "h" (1.2.3.4), port 1 failed: server certificate for "a" '
        'does not match host name "h"'
    )
    # a host whose name mentions ssl is not a TLS failure
    assert not pg_tls_problem(
        'connection to server at "ssl-db.example" (10.0.0.1), port 5432 failed: Connection refused'
    )


def test_passwords_never_show():
    assert redact("postgresql://u:secret@h/db?password=secret&x=1") == (
        "postgresql://u:***@h/db?password=***&x=1"
    )
    assert redact("host=h password='se cret' dbname=x") == "host=h password=*** dbname=x"
    assert redact("amqps://u:secret@h/%2F") == "amqps://u:***@h/%2F"


def test_the_api_pool_refuses_a_plain_warehouse_url_in_production(monkeypatch):
    """The API's own pool (not `db.connect`) applies the same rule, before any connection."""
    from api_service.db import Database
    from latam_dagster.tls import TransportRefused

    monkeypatch.setenv("LATAM_ENV", "production")
    monkeypatch.delenv("LATAM_ALLOW_PLAINTEXT_LOOPBACK", raising=False)
    with pytest.raises(TransportRefused):
        Database("postgresql://latam_api_reader@db.example:5432/latam")
    Database(f"postgresql://latam_api_reader@db.example:5432/latam?{CA_QUERY}")  # lazily opened
