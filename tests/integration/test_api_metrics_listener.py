"""`latam api` under gunicorn serves its metrics on their own listener, never on the API's port:
the gunicorn master adds up what every worker counted and answers Prometheus there, while the
API's port answers 404 at `/metrics`."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

import pytest
import redis

from tests.integration.api_fixtures import new_api_key

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, key: str | None = None) -> tuple[int, bytes, dict[str, str]]:
    request = urllib.request.Request(url)
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)


def test_metrics_listener_of_the_gunicorn_master(warehouse_url, tmp_path):
    port, metrics_port = _free_port(), _free_port()
    prefix = f"test-{uuid.uuid4().hex}"
    env = {
        **os.environ,
        "LATAM_WAREHOUSE_URL": warehouse_url,
        "LATAM_API_WORKERS": "2",
        "LATAM_API_METRICS_PORT": str(metrics_port),
        "LATAM_API_RATELIMIT_KEY_PREFIX": prefix,
    }
    log_path = tmp_path / "api.log"
    log = log_path.open("wb")
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
            assert proc.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, "the API did not become ready"
            time.sleep(0.2)
        key = new_api_key(warehouse_url)
        for _ in range(6):
            status, _, headers = _get(f"{base}/api/v1/flights?limit=1", key)
            assert status == 200
            assert headers["X-Content-Type-Options"] == "nosniff"
        public = _get(f"{base}/metrics")
        assert public[0] == 404 and b"latam_api_requests_total" not in public[1]
        status, body, _ = _get(f"http://127.0.0.1:{metrics_port}/metrics")
        assert status == 200, log_path.read_text()
        line = next(
            ln for ln in body.decode().splitlines()
            if ln.startswith("latam_api_requests_total{") and 'route="/api/v1/flights"' in ln
            and 'status="200"' in ln
        )  # fmt: skip
        assert float(line.rsplit(" ", 1)[1]) == 6.0  # summed over the workers
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()
        client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
        keys = list(client.scan_iter(match=f"*LIMITER/{prefix}/*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()
