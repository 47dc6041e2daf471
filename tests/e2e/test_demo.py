"""`latam demo` as a person runs it: it starts the whole platform, serves it, and stops every
process it started when told to (SIGTERM here, as `kill` or a process manager sends it; Ctrl-C
takes the same path).

Everything is private to the test: warehouse and Dagster databases, DAGSTER_HOME, the topology
prefix on the session's vhost, the quality directory and free loopback ports.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import psycopg2
import pytest

from latam_dagster.ingest.topology import Topology, delete_topology
from tests.conftest import RUN_ID, _db_url, drop_database, query
from tests.integration.observability_support import free_port

pytestmark = [pytest.mark.integration, pytest.mark.e2e]
ROOT = Path(__file__).resolve().parents[2]
LATAM = str(Path(sys.executable).parent / "latam")


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


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status == 200


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
        assert len(children) == 5, children  # webserver, daemon, simulator, exporter, API
        text = log.read_text()
        assert f"http://127.0.0.1:{ui_port}" in text
        assert f"http://127.0.0.1:{exporter_port}/metrics" in text
        key = next(line.split()[-1] for line in text.splitlines() if "API key (demo)" in line)

        _wait_for(lambda: _http_ok(f"http://127.0.0.1:{ui_port}/server_info"), 180, "the UI")
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
