"""`latam demo` as a person runs it: it starts the whole platform, serves it, and stops every
process it started when told to (SIGTERM here, as `kill` or a process manager sends it; Ctrl-C
takes the same path). The UI answers on the demo's port through its proxy: 401 without a login,
the full UI with the printed operator login, the read-only one with the analyst login.

Everything is private to the test: warehouse and Dagster databases, DAGSTER_HOME, the topology
prefix on the session's vhost, the quality directory and free loopback ports.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
import uuid

import psycopg2
import pytest

from latam_dagster.ingest.topology import Topology, delete_topology
from tests.conftest import LATAM, ROOT, RUN_ID, _db_url, drop_database, query
from tests.integration.observability_support import free_port

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(c) for c in f.read().split()]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _wait_for(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
            if result:
                return result
        except (OSError, psycopg2.Error):
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {timeout:.0f} s")
        time.sleep(1)


def _http_ok(url: str, headers: dict[str, str] | None = None) -> bool:
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.status == 200


def _status(url: str, headers: dict[str, str] | None = None) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=5):
            return 200
    except urllib.error.HTTPError as exc:
        return exc.code


def _login(text: str, role: str) -> dict[str, str]:
    """The Authorization header of the login the demo printed for `role`."""
    line = next(line for line in text.splitlines() if line.strip().startswith(f"UI {role}"))
    name, password = line.split()[2:4]
    return {"Authorization": "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()}


def _may_launch(ui: str, headers: dict[str, str]) -> bool:
    request = urllib.request.Request(
        f"{ui}/graphql",
        data=json.dumps({"query": "{ permissions { permission value } }"}).encode(),
        headers={**headers, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        permissions = json.load(response)["data"]["permissions"]
    return {p["permission"]: p["value"] for p in permissions}["launch_pipeline_execution"]


def test_demo_serves_the_platform_and_stops_every_process_on_sigterm(amqp_url, tmp_path):
    name = f"latam_demo_{RUN_ID}_{uuid.uuid4().hex[:6]}"
    warehouse, dagster_db = _db_url(name), _db_url(f"{name}_dagster")
    topo = Topology(prefix=f"demo{uuid.uuid4().hex[:8]}")
    ui_port, api_port, exporter_port = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
        "LATAM_WAREHOUSE_URL": warehouse,
        "LATAM_DAGSTER_PG_URL": dagster_db,
        "LATAM_AMQP_URL": amqp_url,
        "LATAM_TOPOLOGY_PREFIX": topo.prefix,
        "LATAM_QUALITY_DIR": str(tmp_path / "quality"),
        "LATAM_UI_AUTH_DIR": str(tmp_path / "ui-users"),
        "LATAM_EXPORTER_PORT": str(exporter_port),
        "GX_ANALYTICS_ENABLED": "false",
        "DAGSTER_DISABLE_TELEMETRY": "1",
    }
    log = tmp_path / "demo.log"
    demo = subprocess.Popen(
        [LATAM, "demo", "--port", str(ui_port), "--api-port", str(api_port), "--rate", "20"],
        cwd=ROOT, env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT,  # noqa: SIM115
        start_new_session=True,  # a SIGTERM to the demo alone, not to a process group
    )  # fmt: skip
    children: list[int] = []
    try:
        _wait_for(lambda: "Press Ctrl-C" in log.read_text(), 120, "the demo printed its URLs")
        children = _children(demo.pid)
        # proxy, full and read-only webservers, daemon, simulator, exporter, API
        assert len(children) == 7, children
        text = log.read_text()
        ui = f"http://127.0.0.1:{ui_port}"
        assert ui in text
        assert f"http://127.0.0.1:{exporter_port}/metrics" in text
        key = next(line.split()[-1] for line in text.splitlines() if "API key (demo)" in line)
        operator, analyst = _login(text, "operator"), _login(text, "analyst")

        _wait_for(lambda: _http_ok(f"{ui}/server_info", operator), 180, "the UI (operator)")
        _wait_for(lambda: _http_ok(f"{ui}/server_info", analyst), 180, "the UI (analyst)")
        assert _status(f"{ui}/server_info") == 401
        assert _may_launch(ui, operator) and not _may_launch(ui, analyst)
        _wait_for(lambda: _http_ok(f"http://127.0.0.1:{exporter_port}/metrics"), 60, "metrics")
        # with no clicks: sensors drain the simulated traffic into the curated layer
        _wait_for(
            lambda: query(warehouse, "SELECT count(*) FROM curated.fact_flight")[0][0] > 0,
            240,
            "flights reached curated.fact_flight",
        )
        request = urllib.request.Request(
            f"http://127.0.0.1:{api_port}/api/v1/flights?limit=5",
            headers={"Authorization": f"Bearer {key}"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200

        demo.send_signal(signal.SIGTERM)
        assert demo.wait(60) == 0
        assert "all demo processes stopped" in log.read_text()
        _wait_for(lambda: not any(_alive(c) for c in children), 30, "every child stopped")
    finally:
        if demo.poll() is None:
            children = children or _children(demo.pid)
            demo.kill()
            demo.wait()
        for child in children:  # each child leads its own process group
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child, signal.SIGKILL)
        delete_topology(amqp_url, topo)
        drop_database(name)
        drop_database(f"{name}_dagster")
