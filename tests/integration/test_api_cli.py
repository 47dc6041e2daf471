"""`latam api-key create|revoke|list` and `latam api` serving the API with gunicorn."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

import click
import pytest
import redis
from click.testing import CliRunner

from latam_dagster.cli.api import commands
from tests.conftest import query
from tests.integration.observability_support import free_port

pytestmark = pytest.mark.integration

CLI = click.Group("latam", commands={c.name: c for c in commands})


def run(env_url: str, *args: str):
    return CliRunner().invoke(CLI, list(args), env={"LATAM_WAREHOUSE_URL": env_url})


def test_create_list_revoke(warehouse_url):
    created = run(warehouse_url, "api-key", "create", "--name", "dashboards")
    assert created.exit_code == 0, created.output
    key = created.output.strip().splitlines()[-1]
    assert key.startswith("latam_") and len(key) > 40
    assert "dashboards" in run(warehouse_url, "api-key", "list").output

    limited = run(
        warehouse_url, "api-key", "create", "--name", "bi", "--scopes", "routes:read,flights:read"
    )
    assert limited.exit_code == 0
    assert query(warehouse_url, "SELECT scopes FROM api.api_keys WHERE name = 'bi'") == [
        (["flights:read", "routes:read"],)
    ]
    again = run(warehouse_url, "api-key", "create", "--name", "bi")
    assert again.exit_code == 1 and "revoke it first" in again.output

    bad = run(warehouse_url, "api-key", "create", "--name", "x", "--scopes", "raw:read")
    assert bad.exit_code == 1 and "unknown scope" in bad.output
    assert run(warehouse_url, "api-key", "create", "--name", "no spaces").exit_code == 1

    revoked = run(warehouse_url, "api-key", "revoke", "bi")
    assert revoked.exit_code == 0
    assert run(warehouse_url, "api-key", "revoke", "bi").exit_code == 1
    listed = run(warehouse_url, "api-key", "list")
    assert "bi\t" not in listed.output and "1 key(s)" in listed.output
    assert "revoked" in run(warehouse_url, "api-key", "list", "--all").output
    # a revoked name can be given to a new key
    assert run(warehouse_url, "api-key", "create", "--name", "bi").exit_code == 0
    assert key not in run(warehouse_url, "api-key", "list", "--all", "--json").output


def _get(url: str, key: str | None = None) -> tuple[int, bytes, dict[str, str]]:
    request = urllib.request.Request(url)
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)


def test_latam_api_serves_with_gunicorn_as_the_reader(warehouse_url, tmp_path):
    """Two gunicorn workers answer as the read-only role; the master serves every worker's
    metrics on a listener of its own, and the API's port answers 404 at `/metrics`."""
    port, metrics_port = free_port(), free_port()
    prefix = f"test-{uuid.uuid4().hex}"  # this test's own rate-limit counters
    env = {
        **os.environ,
        "LATAM_WAREHOUSE_URL": warehouse_url,
        "LATAM_API_WORKERS": "2",
        "LATAM_API_METRICS_PORT": str(metrics_port),
        "LATAM_API_RATELIMIT_KEY_PREFIX": prefix,
    }
    log = (tmp_path / "api.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-c", "from latam_dagster.cli.api import api; api()", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if _get(f"{base}/readyz")[0] == 200:
                    break
            except OSError:
                pass
            assert proc.poll() is None, (tmp_path / "api.log").read_text()
            assert time.monotonic() < deadline, "the API did not become ready"
            time.sleep(0.2)
        key = run(warehouse_url, "api-key", "create", "--name", "served").output.splitlines()[-1]
        for _ in range(6):  # reach both workers
            status, body, headers = _get(f"{base}/api/v1/flights?limit=1", key)
            assert status == 200 and body == b'{"data":[],"next_cursor":null}'
            assert headers["X-Content-Type-Options"] == "nosniff"
        assert _get(f"{base}/api/v1/flights")[0] == 401
        public = _get(f"{base}/metrics")  # served on a listener of their own
        assert public[0] == 404 and b"latam_api_requests_total" not in public[1]
        status, metrics_body, _ = _get(f"http://127.0.0.1:{metrics_port}/metrics")
        assert status == 200
        metrics = metrics_body.decode()
        line = next(
            ln for ln in metrics.splitlines()
            if ln.startswith("latam_api_requests_total{") and 'route="/api/v1/flights"' in ln
            and 'status="200"' in ln
        )  # fmt: skip
        assert float(line.rsplit(" ", 1)[1]) == 6.0  # summed over the workers
        sessions = query(
            warehouse_url,
            "SELECT DISTINCT usename FROM pg_stat_activity WHERE application_name = 'latam_api' "
            "AND datname = current_database()",
        )
        assert sessions == [("latam_api_reader",)]
        access = [ln for ln in (tmp_path / "api.log").read_text().splitlines() if '"route"' in ln]
        assert access and '"request_id"' in access[-1]  # one JSON access line per request
        keyed = [json.loads(ln) for ln in access if '"/api/v1/flights"' in ln]
        assert [ln.get("api_key") for ln in keyed] == ["served"] * 6 + [None]  # who asked
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()
        client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
        keys = list(client.scan_iter(match=f"*LIMITER/{prefix}/*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()
