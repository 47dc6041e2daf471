"""What the API's answers carry besides data: CSV cells no spreadsheet evaluates, ETags that
change with every change of the body, security headers on every response, and metrics only on
their own listener. None of it needs the database."""

from __future__ import annotations

import csv
import hashlib
import io
import urllib.request
import zlib
from decimal import Decimal

import pytest
from flask import Flask, Response

from api_service import create_app
from api_service.caching import init_caching
from api_service.config import get_api_config
from api_service.formats import to_csv
from api_service.metrics import metrics_of, serve_metrics
from api_service.security_headers import init_security_headers
from tests.integration.observability_support import free_port

PROBLEM = "application/problem+json"
NOWHERE = "postgresql://nobody@127.0.0.1:1/none"  # a database that does not exist


def _app(**overrides):
    return create_app(get_api_config(database_url=NOWHERE, testing=True, **overrides))


@pytest.fixture(scope="module")
def client():
    return _app().test_client()


def _parse(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


# --- CSV formula injection --------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        '=HYPERLINK("http://attacker.example","x")',
        "=1+1",
        "+1+1",
        "-2+3+cmd|' /C calc'!A0",
        "@SUM(1,2)",
        "\t=1+1",
        "\r=1+1",
    ],
)
def test_csv_text_that_starts_a_formula_is_escaped(text):
    rows = _parse(to_csv(["flight_key", "note"], [{"flight_key": "LA800", "note": text}]))
    assert rows[1] == ["LA800", "'" + text]


def test_csv_leaves_plain_text_and_numbers_alone():
    row = {"code": "SCL", "inner": "a=b", "delay": -12, "ratio": Decimal("-0.5"), "ok": None}
    rows = _parse(to_csv(["code", "inner", "delay", "ratio", "ok"], [row]))
    # a negative number is a number, not a formula: it stays what the JSON says
    assert rows[1] == ["SCL", "a=b", "-12", "-0.5", ""]


# --- ETags ------------------------------------------------------------------------------------


def _etag_app(bodies: list[bytes]) -> Flask:
    """A data endpoint whose body is the next one of `bodies` at each request."""
    app = Flask(__name__)
    init_caching(app)
    served = iter(bodies)

    @app.get("/api/v1/thing")
    def thing() -> Response:
        return Response(next(served), mimetype="text/plain")

    return app


def test_etag_is_the_sha256_of_the_body():
    client = _etag_app([b"abc", b"abc", b"abc"]).test_client()
    response = client.get("/api/v1/thing")
    assert response.headers["ETag"] == f'"{hashlib.sha256(b"abc").hexdigest()}"'
    etag = response.headers["ETag"]
    assert client.get("/api/v1/thing", headers={"If-None-Match": etag}).status_code == 304
    # If-None-Match compares weakly: a weak form of the same tag matches too
    assert client.get("/api/v1/thing", headers={"If-None-Match": "W/" + etag}).status_code == 304


def test_a_changed_body_with_the_same_checksum_gets_a_new_etag():
    before, after = b"abc", b"b`d"  # same length and same Adler-32
    assert len(before) == len(after) and zlib.adler32(before) == zlib.adler32(after)
    client = _etag_app([before, after]).test_client()
    etag = client.get("/api/v1/thing").headers["ETag"]
    changed = client.get("/api/v1/thing", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.data == after
    assert changed.headers["ETag"] != etag


# --- security headers -------------------------------------------------------------------------


def _assert_common(response) -> None:
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] in ("no-referrer", "same-origin")
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


@pytest.mark.parametrize(
    "url, status",
    [
        ("/healthz", 200),
        ("/openapi.json", 200),
        ("/api/v1/flights", 401),
        ("/api/v2/nothing", 404),
        ("/api/v1/flights?origin=%00", 400),
        ("/docs/assets/swagger-ui.css", 200),
    ],
)
def test_every_response_carries_the_security_headers(client, url, status):
    response = client.get(url)
    assert response.status_code == status
    _assert_common(response)
    if response.mimetype != "text/html":
        assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")


def test_html_pages_keep_their_own_policy(client):
    docs = client.get("/docs")
    assert docs.status_code == 200 and docs.mimetype == "text/html"
    _assert_common(docs)
    # Swagger UI's start-up script and its local assets stay allowed
    policy = docs.headers["Content-Security-Policy"]
    assert "script-src 'self' 'unsafe-inline'" in policy and "connect-src 'self'" in policy
    login = client.get("/quality/login")
    assert login.status_code == 200 and login.mimetype == "text/html"
    _assert_common(login)
    assert "style-src 'self'" in login.headers["Content-Security-Policy"]


def test_hsts_only_over_tls(client):
    assert "Strict-Transport-Security" not in client.get("/healthz").headers
    direct = client.get("/healthz", base_url="https://api.example")
    assert direct.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    # a client cannot claim TLS by itself: X-Forwarded-Proto counts only behind a trusted proxy
    claimed = client.get("/healthz", headers={"X-Forwarded-Proto": "https"})
    assert "Strict-Transport-Security" not in claimed.headers
    behind_proxy = _app(proxy_hops=1).test_client()
    proxied = behind_proxy.get("/healthz", headers={"X-Forwarded-Proto": "https"})
    assert proxied.headers["Strict-Transport-Security"].startswith("max-age=31536000")


def test_proxy_headers_only_with_configured_hops():
    seen = {}

    def remember(app):
        @app.get("/api/v1/whoami")
        def whoami() -> Response:
            from flask import request

            seen["addr"], seen["scheme"] = request.remote_addr, request.scheme
            return Response("ok")

    for hops, expected in ((0, ("127.0.0.1", "http")), (1, ("203.0.113.7", "https"))):
        app = Flask(__name__)
        remember(app)
        init_security_headers(app, get_api_config(database_url=NOWHERE, proxy_hops=hops))
        app.test_client().get(
            "/api/v1/whoami",
            headers={"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"},
        )
        assert (seen["addr"], seen["scheme"]) == expected, hops


# --- metrics off the public port --------------------------------------------------------------


def test_public_port_answers_404_for_metrics(client):
    response = client.get("/metrics")
    assert response.status_code == 404 and response.content_type == PROBLEM
    assert "/metrics" not in client.get("/openapi.json").get_json()["paths"]


def test_metrics_listener_serves_the_app_metrics():
    app = _app()
    app.test_client().get("/healthz")
    port = free_port()
    server, _ = serve_metrics("127.0.0.1", port, metrics_of(app).registry)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            text = answer.read().decode()
    finally:
        server.shutdown()
    assert 'latam_api_requests_total{method="GET",route="/healthz",status="200"} 1.0' in text
