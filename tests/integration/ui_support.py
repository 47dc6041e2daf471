"""Helpers of the UI access tests: a Dagster instance of the test's own, real Dagster webservers
(full or read-only) on free loopback ports, nginx started the way `latam demo` starts it, HTTP
with basic credentials, and the addresses a port listens on (from /proc/net)."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bench.harness import stop_process_group as stop
from latam_dagster.db import ensure_database
from latam_dagster.demo import stop_code_servers
from latam_dagster.ingest.topology import Topology, declare_topology, delete_topology
from latam_dagster.pipeline import DAGSTER_YAML_TEMPLATE
from latam_dagster.settings import UiProxySettings, normalize_pg_url
from latam_dagster.uiproxy import nginx
from tests.conftest import RUN_ID, _admin_exec, _db_url, drop_database
from tests.integration.observability_support import free_port
from tests.waiting import eventually

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
START_S = 180  # a webserver loads the code location in a code server of its own first
ANALYST = ("ana", "analyst-password-1")
OPERATOR = ("otto", "operator-password-1")
STAFF = ((*ANALYST, "analyst"), (*OPERATOR, "operator"))
"""The users `proxied_ui` makes unless told otherwise: (name, password, role)."""


@dataclass
class Site:
    """A warehouse, a Dagster instance and a topology of the test's own, and the environment
    that points every platform process at them."""

    env: dict[str, str]
    home: Path
    warehouse_url: str
    topology: Topology
    amqp_url: str


@dataclass
class Ui:
    """The UI behind its proxy: nginx on `port`, the full and read-only webservers behind it."""

    site: Site
    url: str
    port: int
    full_port: int
    read_only_port: int
    nginx: subprocess.Popen
    config: nginx.ProxyConfig


@contextlib.contextmanager
def site(
    template_db: str, amqp_url: str, home: Path, run_immediately: bool = False
) -> Iterator[Site]:
    """A fresh site. `run_immediately` launches runs at once (no daemon needed) instead of
    queueing them for the daemon as the platform's dagster.yaml does."""
    name = f"latam_ui_{RUN_ID}_{uuid.uuid4().hex[:6]}"
    dagster_db = f"{name}_dagster"
    _admin_exec(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
    ensure_database(_db_url(dagster_db))
    config = yaml.safe_load(DAGSTER_YAML_TEMPLATE.read_text())
    if run_immediately:
        config.pop("run_queue", None)
        config["run_coordinator"] = {
            "module": "dagster.core.run_coordinator",
            "class": "DefaultRunCoordinator",
        }
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    topo = Topology(prefix=f"ui{uuid.uuid4().hex[:8]}")
    declare_topology(amqp_url, topo)
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "LATAM_WAREHOUSE_URL": _db_url(name),
        "LATAM_DAGSTER_PG_URL": normalize_pg_url(_db_url(dagster_db)),
        "LATAM_AMQP_URL": amqp_url,
        "LATAM_TOPOLOGY_PREFIX": topo.prefix,
        "LATAM_QUALITY_DIR": str(home / "quality"),
        "LATAM_UI_AUTH_DIR": str(home / "ui-users"),
        "GX_ANALYTICS_ENABLED": "false",
        "DAGSTER_DISABLE_TELEMETRY": "1",
    }
    try:
        yield Site(env, home, _db_url(name), topo, amqp_url)
    finally:
        delete_topology(amqp_url, topo)
        drop_database(name)
        drop_database(dagster_db)


def ui_user(s: Site, *args: str, password: str | None = None) -> str:
    """`latam ui-user ...` against the site's users; the password goes to stdin."""
    proc = subprocess.run(
        [str(BIN / "latam"), "ui-user", *args], input=password, env=s.env, capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def proxy_config(
    s: Site, port: int, full: int, read_only: int, name: str, **tls: str
) -> nginx.ProxyConfig:
    """The configuration `latam demo` would render for this site (listening on loopback)."""
    settings = UiProxySettings(auth_dir=s.env["LATAM_UI_AUTH_DIR"], host="127.0.0.1", **tls)
    return nginx.ProxyConfig.from_settings(
        settings, port, f"127.0.0.1:{read_only}", f"127.0.0.1:{full}", s.home / name
    )


@contextlib.contextmanager
def proxied_ui(
    template_db: str, amqp_url: str, home: Path, users: Iterable[tuple[str, str, str]] = STAFF
) -> Iterator[Ui]:
    """A site, its two webservers and nginx in front of them, with `users` ((name, password,
    role), made with `latam ui-user`). Runs launched through it are queued for a daemon that is
    not running: nothing executes."""
    if not nginx_available():
        import pytest

        pytest.fail("nginx is not installed: run infra/ci/install-tools.sh (make tools)")
    with site(template_db, amqp_url, home) as s:
        full_port, read_only_port, port = free_port(), free_port(), free_port()
        procs = []
        try:
            for p, read_only in ((full_port, False), (read_only_port, True)):
                procs.append(start_webserver(s, p, read_only, home / f"webserver-{p}.log"))
            for name, password, role in users:
                ui_user(s, "add", name, "--role", role, password=password)
            config = proxy_config(s, port, full_port, read_only_port, "proxy")
            procs.append(proxy := start_nginx(config, s.env))
            for p in (full_port, read_only_port):
                wait_webserver(f"http://127.0.0.1:{p}", home / f"webserver-{p}.log")
            yield Ui(s, config.url, port, full_port, read_only_port, proxy, config)
        finally:
            for proc in procs:
                stop(proc)
            stop_code_servers(home)


def start_webserver(s: Site, port: int, read_only: bool, log: Path) -> subprocess.Popen:
    """`dagster-webserver` on 127.0.0.1:`port`, exactly as `latam demo` starts it."""
    from latam_dagster.demo import webserver_args

    return subprocess.Popen(
        webserver_args(port, read_only), cwd=ROOT, env=s.env, stdout=subprocess.DEVNULL,
        stderr=open(log, "wb"), start_new_session=True,  # noqa: SIM115
    )  # fmt: skip


def start_nginx(config: nginx.ProxyConfig, env: dict[str, str]) -> subprocess.Popen:
    """nginx on the written configuration, in the foreground, as `latam demo` starts it."""
    nginx.write_config(config)
    nginx.check(config)
    log = open(config.state_dir / "stderr.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        nginx.command(config), env=env, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    wait_for(
        lambda: proc.poll() is None and config.listen_port in listening_ports(),
        30,
        f"nginx listening on {config.listen_port}",
        on_timeout=lambda: (config.state_dir / "logs" / "error.log").read_text(),
    )
    return proc


def _children(pid: int) -> set[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return {int(c) for c in f.read().split()}


def reload_nginx(proc: subprocess.Popen) -> None:
    """SIGHUP, then wait until every worker that ran the old configuration has exited (until
    then an old worker may still take a new connection)."""
    old = _children(proc.pid)
    nginx.reload(proc.pid)
    wait_for(
        lambda: (now := _children(proc.pid)) and not (now & old),
        30,
        "nginx workers on the new configuration only",
    )


def wait_for(
    probe: Callable[[], Any],
    timeout: float,
    what: str,
    on_timeout: Callable[[], str] | None = None,
) -> Any:
    """Poll `probe` until it returns something true (connection, JSON and missing-key errors
    count as not yet); returns it."""
    return eventually(
        probe, timeout, what, interval=0.2, errors=(OSError, ValueError, KeyError),
        detail=on_timeout,
    )  # fmt: skip


def run_ids(ui: Ui) -> list[str]:
    """The runs of the UI's Dagster instance, asked of the full webserver directly (on loopback,
    as the test's own observer, not through the proxy)."""
    data = graphql(
        f"http://127.0.0.1:{ui.full_port}", "{ runsOrError { ... on Runs { results { runId } } } }"
    )
    return [r["runId"] for r in data["runsOrError"]["results"]]


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def http(
    url: str,
    headers: dict[str, str] | None = None,
    body: dict | None = None,
    context: ssl.SSLContext | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of one request; an HTTP error status is an answer, not raised."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers=dict(headers or {}))
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30, context=context) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def graphql(base: str, query: str, variables: dict | None = None, **kwargs: Any) -> dict:
    status, _, body = http(f"{base}/graphql", body={"query": query, "variables": variables or {}},
                           **kwargs)  # fmt: skip
    assert status == 200, (status, body[:500])
    answer = json.loads(body)
    assert "errors" not in answer, answer["errors"]
    return answer["data"]


def wait_webserver(base: str, log: Path, headers: dict[str, str] | None = None) -> None:
    """Until the webserver answers with its code location loaded."""

    def loaded() -> bool:
        data = graphql(
            base,
            "{ workspaceOrError { ... on Workspace { locationEntries { "
            "locationOrLoadError { __typename } } } } }",
            headers=headers,
        )
        entries = data["workspaceOrError"]["locationEntries"]
        kinds = [
            e["locationOrLoadError"] and e["locationOrLoadError"]["__typename"] for e in entries
        ]
        assert "PythonError" not in kinds, kinds
        return bool(kinds) and all(k == "RepositoryLocation" for k in kinds)

    wait_for(loaded, START_S, f"the webserver at {base}",
             on_timeout=lambda: log.read_text(errors="replace")[-3000:])  # fmt: skip


def listening_ports() -> set[int]:
    return {port for port, _ in listeners()}


def listeners() -> set[tuple[int, str]]:
    """(port, local address) of every listening TCP socket of this machine (/proc/net/tcp{,6})."""
    found = set()
    for table, size in (("/proc/net/tcp", 4), ("/proc/net/tcp6", 16)):
        with contextlib.suppress(FileNotFoundError), open(table) as f:
            next(f)
            for line in f:
                local, state = line.split()[1], line.split()[3]
                if state != "0A":  # LISTEN
                    continue
                hex_addr, hex_port = local.split(":")
                raw = bytes.fromhex(hex_addr)
                # the kernel prints each 32-bit word in host (little-endian) order
                raw = b"".join(raw[i : i + 4][::-1] for i in range(0, size, 4))
                family = socket.AF_INET if size == 4 else socket.AF_INET6
                found.add((int(hex_port, 16), socket.inet_ntop(family, raw)))
    return found


def addresses_of(port: int) -> set[str]:
    return {addr for p, addr in listeners() if p == port}


def nginx_available() -> bool:
    try:
        nginx.nginx_binary()
        return True
    except nginx.NginxMissing:
        return False


def non_loopback_address() -> str | None:
    """An address of this machine that is not loopback, if it has one (a connected UDP socket
    shows the address outgoing traffic would use; nothing is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1: never routed anywhere
        except OSError:
            return None
        addr = s.getsockname()[0]
    return None if addr.startswith("127.") or addr == "0.0.0.0" else addr
