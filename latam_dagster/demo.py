"""`latam demo`: the whole platform on one machine, stopped cleanly with Ctrl-C.

Checks that Postgres and RabbitMQ answer (and says how to start the one that does not), prepares
the databases, schemas, topology and DAGSTER_HOME, then starts the Dagster UI behind its
authenticating proxy, the Dagster daemon, the event simulator and (when present) the REST API as
child processes, prints the URLs and the demo's UI logins, and stops every child when interrupted.

The UI is nginx on the published port (HTTP basic authentication, HTTPS when LATAM_UI_TLS_CERT
and LATAM_UI_TLS_KEY are set) in front of two Dagster webservers on loopback ports: a read-only
one for analysts and the full one for operators (docs/ui-access.md). nginx runs unprivileged in
the foreground, with its configuration, pid file, logs and temporary files under
DAGSTER_HOME/proxy; the demo reloads it when `latam ui-user` changes a role.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import click

from latam_dagster.db import WarehouseUnavailable, connect
from latam_dagster.ingest.topology import BrokerUnavailable, open_connection
from latam_dagster.settings import Settings, get_settings, get_ui_proxy_settings
from latam_dagster.uiproxy import nginx
from latam_dagster.uiproxy.users import ROLES_MAP, UserStore

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Child:
    name: str
    proc: subprocess.Popen


def check_services(settings: Settings) -> list[str]:
    """One line of advice per service that does not answer; empty when all is well."""
    problems = []
    try:
        connect(settings.dsn.rsplit("/", 1)[0] + "/postgres").close()
    except WarehouseUnavailable as exc:
        problems.append(str(exc))
    try:
        open_connection(settings.amqp_url).close()
    except BrokerUnavailable as exc:
        problems.append(str(exc))
    return problems


def _bin(name: str) -> str:
    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else (shutil.which(name) or name)


def _start(name: str, args: list[str], env: dict[str, str], log_dir: Path) -> Child:
    env = {**env, "LATAM_SERVICE_NAME": name}  # tags every JSON log line with its process
    log = open(log_dir / f"{name}.log", "ab")  # noqa: SIM115  (closed with the process)
    proc = subprocess.Popen(
        args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    return Child(name, proc)


def free_loopback_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


DEMO_USERS = {"operator": "demo-operator", "analyst": "demo-analyst"}


def demo_logins(store: UserStore) -> dict[str, tuple[str, str]]:
    """A UI login per role with a new random password (role -> (name, password)); the demo
    prints them, as it prints its API key. Other users of the store are left as they are."""
    logins = {}
    for role, name in DEMO_USERS.items():
        password = secrets.token_urlsafe(18)
        store.add(name, role, password, replace=True)
        logins[role] = (name, password)
    return logins


def webserver_args(port: int, read_only: bool) -> list[str]:
    """A Dagster webserver on a loopback port: only the proxy on the same machine reaches it."""
    args = [_bin("dagster-webserver"), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)]
    return [*args, "--read-only"] if read_only else args


def stop_code_servers(dagster_home: Path) -> None:
    """Kill the gRPC code servers of this Dagster instance that outlived their parent.

    The webserver and the daemon start them in sessions of their own, so stopping a parent's
    process group does not reach them, and a parent killed before it could shut them down leaves
    them running. Their command line names the instance's storage under `dagster_home`.
    """
    pattern = f"dagster api grpc .*{re.escape(str(dagster_home.resolve()))}"
    subprocess.run(["pkill", "-KILL", "-f", pattern], check=False, capture_output=True)


def _stop(children: list[Child], timeout: float = 15.0) -> None:
    for child in children:
        if child.proc.poll() is None:
            os.killpg(child.proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for child in children:
        try:
            child.proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(child.proc.pid, signal.SIGKILL)
            child.proc.wait()


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt  # `kill`, a closed terminal and Ctrl-C all stop the demo cleanly


def run_demo(port: int, api_port: int, rate: float, systems: int, seed: int) -> int:
    """Start everything and block until Ctrl-C or a child dies; returns an exit status."""
    from latam_dagster.pipeline import ensure_dagster_home, prepare

    settings = get_settings()
    problems = check_services(settings)
    try:
        nginx.nginx_binary()
    except nginx.NginxMissing as exc:
        problems.append(str(exc))
    if problems:
        for p in problems:
            click.echo(f"error: {p}", err=True)
        return 2
    prepare(settings)
    home = ensure_dagster_home(settings)
    env = dict(os.environ)
    log_dir = home / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    ui = get_ui_proxy_settings()
    store = UserStore(ui.auth_dir)
    logins = demo_logins(store)
    full_port, read_only_port = free_loopback_port(), free_loopback_port()
    proxy = nginx.ProxyConfig.from_settings(
        ui,
        port,
        analyst_upstream=f"127.0.0.1:{read_only_port}",
        operator_upstream=f"127.0.0.1:{full_port}",
        state_dir=home / "proxy",
    )
    try:
        nginx.write_config(proxy)
        nginx.check(proxy)
    except ValueError as exc:
        click.echo(f"error: {exc}", err=True)
        return 2
    roles_map = store.dir / ROLES_MAP
    children: list[Child] = []
    # installed explicitly: a process started in the background inherits an ignored SIGINT, and
    # without a SIGTERM handler the children (each in its own session) would be orphaned
    previous = {sig: signal.signal(sig, _interrupt) for sig in STOP_SIGNALS}
    try:
        children.append(_start("webserver", webserver_args(full_port, False), env, log_dir))
        children.append(
            _start("webserver-readonly", webserver_args(read_only_port, True), env, log_dir)
        )
        proxy_child = _start("proxy", nginx.command(proxy), env, log_dir)
        children.append(proxy_child)
        children.append(
            _start("daemon", [_bin("dagster-daemon"), "run", "-w", "workspace.yaml"], env, log_dir)
        )
        children.append(
            _start(
                "simulator",
                [
                    _bin("latam"),
                    "simulate",
                    "--forever",
                    "--rate",
                    str(rate),
                    "--systems",
                    str(systems),
                    "--seed",
                    str(seed),
                ],
                env,
                log_dir,
            )
        )
        children.append(_start("exporter", [_bin("latam"), "exporter"], env, log_dir))
        if (ROOT / "api_service").exists():
            children.append(
                _start(
                    "api",
                    [_bin("latam"), "api", "--host", "127.0.0.1", "--port", str(api_port)],
                    env,
                    log_dir,
                )
            )
        click.echo("LATAM data platform demo is starting:")
        click.echo(f"  Dagster UI       {proxy.url}  (lineage, runs, sensors, checks; log in)")
        name, password = logins["operator"]
        click.echo(f"  UI operator      {name} {password}  (full UI: launches runs)")
        name, password = logins["analyst"]
        click.echo(f"  UI analyst       {name} {password}  (read-only UI)")
        click.echo("  UI users         latam ui-user add NAME --role analyst|operator")
        if any(c.name == "api" for c in children):
            key = issue_key(settings.warehouse_url, "demo", replace=True)
            click.echo(f"  REST API         http://127.0.0.1:{api_port}/docs")
            click.echo(f"  API key (demo)   {key}")
            click.echo(
                f"  try              curl -H 'Authorization: Bearer {key}' "
                f"http://127.0.0.1:{api_port}/api/v1/flights?limit=5"
            )
        from latam_dagster.observability.config import get_exporter_config

        exporter = get_exporter_config()
        click.echo(
            f"  metrics          http://{exporter.host}:{exporter.port}/metrics  (pipeline exporter)"
        )
        click.echo(f"  simulator        {rate:g} events/s from {systems} source systems")
        click.echo(f"  logs             {log_dir}")
        click.echo("Press Ctrl-C to stop everything.")
        roles_seen = roles_map.stat().st_mtime_ns
        while True:
            for child in children:
                if child.proc.poll() is not None:
                    click.echo(
                        f"error: {child.name} exited with status {child.proc.returncode}; "
                        f"see {log_dir / (child.name + '.log')}",
                        err=True,
                    )
                    return 1
            roles_now = roles_map.stat().st_mtime_ns
            if roles_now != roles_seen:  # a role changed: nginx reads its map at (re)load only
                roles_seen = roles_now
                nginx.reload(proxy_child.proc.pid)
            time.sleep(1)
    except KeyboardInterrupt:
        click.echo("\nstopping ...")
        return 0
    finally:
        for sig in STOP_SIGNALS:  # a second signal must not cut the shutdown short
            signal.signal(sig, signal.SIG_IGN)
        _stop(children)
        stop_code_servers(home)
        click.echo("all demo processes stopped")
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def issue_key(warehouse_url: str, name: str, replace: bool = False) -> str:
    """A new key with every scope, for programs (the demo prints one); `replace` first revokes
    an active key of that name. It migrates: the demo is the one-machine deploy."""
    from api_service.auth import SCOPES, create_key, revoke_key
    from latam_dagster import db

    db.migrate(warehouse_url)
    with db.connection(warehouse_url) as conn:
        if replace:
            revoke_key(conn, name)
        return create_key(conn, name, list(SCOPES))
