"""The Dagster UI behind its authenticating proxy, with every piece real: nginx started from the
configuration `latam demo` renders, users made with `latam ui-user`, a read-only and a full
`dagster-webserver` started as the demo starts them (on loopback ports), a Dagster instance and
warehouse of the test's own, and a throwaway certificate authority for HTTPS.

- no credentials, a wrong password or an unknown user: 401, whatever the path;
- an analyst reaches the read-only webserver: the launch mutation is refused there;
- an operator reaches the full webserver: the same mutation launches a run;
- the webservers listen on 127.0.0.1 only; nginx is the one way in;
- users and roles change without granting more than the htpasswd files say;
- WebSocket upgrades (the UI's live updates) pass the proxy, for authenticated users only;
- HTTPS at the proxy: a client that trusts the test's CA gets the UI, one that does not refuses
  the connection.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import ssl
import threading
import urllib.error
from dataclasses import replace

import pytest
from dagster_graphql import DagsterGraphQLClient, DagsterGraphQLClientError

from tests.integration.observability_support import free_port
from tests.integration.ui_support import (
    ANALYST,
    OPERATOR,
    Ui,
    addresses_of,
    basic,
    graphql,
    http,
    non_loopback_address,
    proxied_ui,
    proxy_config,
    reload_nginx,
    run_ids,
    start_nginx,
    stop,
    ui_user,
)
from tests.tls_support import make_pki

pytestmark = pytest.mark.integration
REALM = 'Basic realm="LATAM Dagster UI"'


@pytest.fixture(scope="module")
def ui(template_db, amqp_url, tmp_path_factory):
    with proxied_ui(template_db, amqp_url, tmp_path_factory.mktemp("ui_proxy_home")) as u:
        yield u


def _client(ui: Ui, user: tuple[str, str]) -> DagsterGraphQLClient:
    return DagsterGraphQLClient("127.0.0.1", port_number=ui.port, headers=basic(*user))


def _may_launch(ui: Ui, user: tuple[str, str]) -> bool:
    """What the webserver this user reaches says of launching runs."""
    data = graphql(ui.url, "{ permissions { permission value } }", headers=basic(*user))
    return {p["permission"]: p["value"] for p in data["permissions"]}["launch_pipeline_execution"]


def test_without_valid_credentials_the_proxy_answers_401(ui: Ui):
    attempts = {
        "none": {},
        "wrong password": basic(ANALYST[0], "not-the-password"),
        "unknown user": basic("mallory", ANALYST[1]),
        "another user's password": basic(OPERATOR[0], ANALYST[1]),
        "not basic": {"Authorization": "Bearer " + base64.b64encode(b"x").decode()},
    }
    for what, headers in attempts.items():
        for path in ("/", "/server_info", "/graphql", "/assets/curated/fact_flight"):
            status, answer, body = http(ui.url + path, headers=headers)
            assert status == 401, (what, path, status)
            assert answer.get("WWW-Authenticate") == REALM, (what, path, answer)
            assert b"dagster" not in body.lower(), (what, path)
    # nor does a launch get through
    runs = run_ids(ui)
    status, _, _ = http(ui.url + "/graphql", body={"query": "mutation { terminateRuns }"})
    assert status == 401
    assert run_ids(ui) == runs


def test_an_analyst_gets_the_read_only_ui(ui: Ui):
    status, _, page = http(ui.url + "/", headers=basic(*ANALYST))
    assert status == 200 and b">Dagster</title>" in page
    assert not _may_launch(ui, ANALYST)
    runs = run_ids(ui)
    with pytest.raises(DagsterGraphQLClientError) as refused:
        _client(ui, ANALYST).submit_job_execution("drain_job")
    assert refused.value.args[0] == "UnauthorizedError", refused.value
    assert run_ids(ui) == runs


def test_an_operator_gets_the_full_ui(ui: Ui):
    status, _, page = http(ui.url + "/", headers=basic(*OPERATOR))
    assert status == 200 and b">Dagster</title>" in page
    assert _may_launch(ui, OPERATOR)
    run_id = _client(ui, OPERATOR).submit_job_execution("drain_job")
    assert run_id in run_ids(ui)  # queued for a daemon this test does not run


def test_the_webservers_listen_on_loopback_only(ui: Ui):
    assert addresses_of(ui.full_port) == {"127.0.0.1"}
    assert addresses_of(ui.read_only_port) == {"127.0.0.1"}
    assert addresses_of(ui.port) == {"127.0.0.1"}  # LATAM_UI_HOST, here loopback as well
    other = non_loopback_address()
    if other is not None:  # this machine has another address: nothing answers there
        for port in (ui.full_port, ui.read_only_port):
            with pytest.raises(ConnectionRefusedError), socket.create_connection((other, port), 5):
                pass


def test_user_changes_never_grant_more_than_the_files_say(ui: Ui):
    carol = ("carol", "carol-password-12")
    ui_user(ui.site, "add", carol[0], "--role", "analyst", password=carol[1])
    assert not _may_launch(ui, carol)  # at once: a new name is an analyst until a reload

    ui_user(ui.site, "add", carol[0], "--role", "operator", "--replace", password=carol[1])
    # nginx still maps carol to analyst, whose file no longer lists her: refused, not promoted
    assert http(ui.url + "/server_info", headers=basic(*carol))[0] == 401
    reload_nginx(ui.nginx)
    assert _may_launch(ui, carol)

    ui_user(ui.site, "remove", carol[0])
    assert http(ui.url + "/server_info", headers=basic(*carol))[0] == 401  # without a reload
    listed = ui_user(ui.site, "list")
    assert listed.split() == [ANALYST[0], "analyst", OPERATOR[0], "operator"]


def _upgrade(port: int, headers: dict[str, str]) -> str:
    """The status line nginx answers a WebSocket handshake on /graphql with."""
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        "GET /graphql HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
        "Sec-WebSocket-Protocol: graphql-ws",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    with socket.create_connection(("127.0.0.1", port), 30) as conn:
        conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        return conn.makefile("rb").readline().decode().strip()


def test_websocket_upgrades_pass_for_authenticated_users_only(ui: Ui):
    assert _upgrade(ui.port, basic(*OPERATOR)).startswith("HTTP/1.1 101")
    assert _upgrade(ui.port, basic(*ANALYST)).startswith("HTTP/1.1 101")
    assert _upgrade(ui.port, {}).startswith("HTTP/1.1 401")


# -- HTTPS ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def https_ui(ui: Ui, tmp_path_factory):
    """(port, CA file) of a second proxy, HTTPS only, in front of the same webservers."""
    pki = make_pki(tmp_path_factory.mktemp("tls"))  # a server certificate for 127.0.0.1, localhost
    port = free_port()
    config = proxy_config(
        ui.site,
        port,
        ui.full_port,
        ui.read_only_port,
        "proxy-tls",
        tls_cert=str(pki.server_cert),
        tls_key=str(pki.server_key),
    )
    assert config.url == f"https://127.0.0.1:{port}"
    proc = start_nginx(config, ui.site.env)
    try:
        yield port, pki.ca_cert
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def https_api(ui: Ui, tmp_path_factory):
    """(port, CA file) of a proxy terminating TLS for a running API (trusting that one hop)."""
    from werkzeug.serving import make_server

    from api_service import create_app
    from api_service.config import READ_ONLY_ROLE, get_api_config
    from latam_dagster.settings import role_url

    config = get_api_config(
        database_url=role_url(ui.site.env["LATAM_WAREHOUSE_URL"], READ_ONLY_ROLE),
        proxy_hops=1,
        ratelimit_enabled=False,
    )
    app = create_app(config)
    server = make_server("127.0.0.1", free_port(), app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    pki = make_pki(tmp_path_factory.mktemp("api_tls"))
    proxy = replace(
        proxy_config(
            ui.site,
            free_port(),
            ui.full_port,
            ui.read_only_port,
            "proxy-api",
            tls_cert=str(pki.server_cert),
            tls_key=str(pki.server_key),
        ),
        api_upstream=f"127.0.0.1:{server.server_port}",
        api_port=free_port(),
    )
    proc = start_nginx(proxy, ui.site.env)
    try:
        yield proxy.api_port, pki.ca_cert
    finally:
        stop(proc)
        server.shutdown()
        app.extensions["latam_api"].db.close()


def test_the_api_is_served_over_https_at_the_proxy(https_api):
    """The API behind the proxy's TLS: trusted clients reach it (and get HSTS, the API seeing
    https through its one trusted hop); clients without the CA and plain HTTP do not."""
    port, ca = https_api
    status, answer, body = http(
        f"https://localhost:{port}/healthz", context=ssl.create_default_context(cafile=str(ca))
    )
    assert status == 200 and json.loads(body) == {"status": "ok"}
    assert answer.get("Strict-Transport-Security", "").startswith("max-age=")
    with pytest.raises(urllib.error.URLError) as refused:
        http(f"https://127.0.0.1:{port}/healthz", context=ssl.create_default_context())
    assert isinstance(refused.value.reason, ssl.SSLCertVerificationError), refused.value
    assert http(f"http://127.0.0.1:{port}/healthz")[0] == 400  # the port speaks TLS only


def test_https_at_the_proxy_with_a_trusted_ca(https_ui):
    port, ca = https_ui
    trusting = ssl.create_default_context(cafile=str(ca))
    for host in ("127.0.0.1", "localhost"):
        url = f"https://{host}:{port}/server_info"
        status, answer, _ = http(url, headers=basic(*OPERATOR), context=trusting)
        assert status == 200, (host, status)
        assert answer.get("Strict-Transport-Security", "").startswith("max-age=")
        status, answer, _ = http(url, context=trusting)
        assert status == 401 and answer.get("WWW-Authenticate") == REALM


def test_a_client_that_does_not_trust_the_ca_refuses_the_connection(https_ui):
    port, _ = https_ui
    system_trust = ssl.create_default_context()
    with pytest.raises(urllib.error.URLError) as refused:
        http(
            f"https://127.0.0.1:{port}/server_info", headers=basic(*OPERATOR), context=system_trust
        )
    assert isinstance(refused.value.reason, ssl.SSLCertVerificationError), refused.value


def test_the_https_port_speaks_no_plain_http(https_ui):
    port, _ = https_ui
    status, _, _ = http(f"http://127.0.0.1:{port}/server_info", headers=basic(*OPERATOR))
    assert status == 400  # nginx: "The plain HTTP request was sent to HTTPS port"
