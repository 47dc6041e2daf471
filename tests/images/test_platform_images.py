"""The latam/platform image runs the whole platform: every process in a container of its own,
the machine's Postgres, RabbitMQ and Redis as the services (this test's own databases, vhost,
topology prefix and rate-limit keys), each container on the host network with its own loopback
port.

1. `migrate` (a one-shot container) creates and migrates the warehouse;
2. code location, daemon, webserver, API, exporter and UI proxy start and pass their HEALTHCHECKs;
3. `api-key create` (one-shot) issues a key, `simulate` (one-shot) publishes events;
4. with no other help the daemon's sensors drain them through the code location (runs execute in
   its container) into raw and curated tables, and the API serves exactly the curated flights;
5. the exporter reports the drained queues, the UI proxy asks for a login and passes one through.

Everything is removed at the end, whatever happened. `make test` builds the image first and runs
this test with the rest of the suite; `make test-images` builds it and runs this test alone.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from latam_dagster.db import ensure_database
from latam_dagster.ingest.topology import Topology, delete_topology, queue_depths
from tests.conftest import RUN_ID, _db_url, drop_database, query
from tests.images.podman import IMAGE, Stack, image_exists
from tests.integration.observability_support import free_port

pytestmark = [pytest.mark.images, pytest.mark.integration]

EVENTS = 300
SEED = 7
UI_USER, UI_PASSWORD = "smoke-operator", "smoke-test-password-1"


def wait_for(check: Callable[[], Any], timeout: float, what: str, stack: Stack) -> Any:
    """Poll `check` until it returns something true; fail with the containers' logs."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
            last = result
        except (OSError, ValueError) as exc:
            last = exc
        time.sleep(2)
    raise AssertionError(f"{what} within {timeout:.0f} s (last: {last!r})\n{stack.diagnostics()}")


def http(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (loopback)
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.fixture
def stack(amqp_url: str) -> Iterator[tuple[Stack, dict[str, Any]]]:
    """The environment of this test's containers (databases, vhost, prefix, ports) and the stack,
    torn down afterwards: containers, volumes, topology and databases."""
    if not image_exists():
        pytest.fail(f"{IMAGE} is missing: `make images` builds it (`make test-images` does both)")
    tag = f"{RUN_ID}_{uuid.uuid4().hex[:6]}"
    warehouse_db, dagster_db = f"latam_img_{tag}", f"latam_img_{tag}_dagster"
    topo = Topology(prefix=f"img{uuid.uuid4().hex[:8]}")
    ports = {
        name: free_port() for name in ("grpc", "webserver", "api", "api_metrics", "exporter", "ui")
    }
    # the containers share the host's network: 127.0.0.1 is the machine's loopback
    warehouse_url = _db_url(warehouse_db).replace("@localhost:", "@127.0.0.1:")
    dagster_url = _db_url(dagster_db).replace("@localhost:", "@127.0.0.1:")
    amqp = amqp_url.replace("@localhost:", "@127.0.0.1:")
    env = {
        "LATAM_WAREHOUSE_URL": warehouse_url,
        "LATAM_DAGSTER_PG_URL": dagster_url,
        "LATAM_AMQP_URL": amqp,
        "LATAM_TOPOLOGY_PREFIX": topo.prefix,
        "LATAM_CODE_LOCATION_HOST": "127.0.0.1",
        "LATAM_CODE_LOCATION_PORT": str(ports["grpc"]),
        "DAGSTER_GRPC_HOST": "127.0.0.1",
        "DAGSTER_GRPC_PORT": str(ports["grpc"]),
        "DAGSTER_WEBSERVER_HOST": "127.0.0.1",
        "DAGSTER_WEBSERVER_PORT": str(ports["webserver"]),
        "LATAM_API_HOST": "127.0.0.1",
        "LATAM_API_PORT": str(ports["api"]),
        "LATAM_API_METRICS_HOST": "127.0.0.1",
        "LATAM_API_METRICS_PORT": str(ports["api_metrics"]),
        "LATAM_API_WORKERS": "1",
        "LATAM_API_RATELIMIT_STORAGE_URL": "redis://127.0.0.1:6379/0",
        "LATAM_API_RATELIMIT_KEY_PREFIX": f"latam_img_{tag}",
        "LATAM_EXPORTER_HOST": "127.0.0.1",
        "LATAM_EXPORTER_PORT": str(ports["exporter"]),
        "LATAM_UI_HOST": "127.0.0.1",
        "LATAM_UI_PORT": str(ports["ui"]),
        "LATAM_LOG_LEVEL": "INFO",
    }
    ctx = {
        "env": env,
        "ports": ports,
        "warehouse_url": warehouse_url,
        "dagster_url": dagster_url,
        "amqp_url": amqp,
        "topology": topo,
    }
    ensure_database(dagster_url)
    stack = Stack(f"latam-img-{tag.replace('_', '-')}", env)
    try:
        yield stack, ctx
    finally:
        stack.close()
        delete_topology(amqp, topo)
        drop_database(warehouse_db)
        drop_database(dagster_db)


@pytest.mark.timeout(1200)
def test_platform_image_runs_the_pipeline_end_to_end(stack):
    stack, ctx = stack
    ports, warehouse_url = ctx["ports"], ctx["warehouse_url"]
    timings: dict[str, float] = {}
    started = time.monotonic()

    # 1. the deploy step
    migrated = stack.run("migrate")
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    assert "warehouse at version" in migrated.stdout
    assert query(warehouse_url, "SELECT count(*) FROM curated.dim_airport")[0][0] > 0
    timings["migrate"] = time.monotonic() - started

    # 2. the long-running processes, each in its own container
    quality = stack.volume("quality") + ":/var/lib/latam/quality"
    storage = stack.volume("dagster-storage") + ":/opt/dagster/home/storage"
    ui_users = stack.volume("ui-users") + ":/var/lib/latam/ui"
    added = stack.run(
        "ui-user", "add", UI_USER, "--role", "operator", "--password-stdin",
        mounts=[ui_users], input=UI_PASSWORD + "\n",
    )  # fmt: skip
    assert added.returncode == 0, added.stdout + added.stderr
    webserver_at = f"127.0.0.1:{ports['webserver']}"
    names = {
        "code-location": stack.start("code-location", "code-location", mounts=[quality, storage]),
        "daemon": stack.start("daemon", "daemon", mounts=[storage]),
        "webserver": stack.start("webserver", "webserver", mounts=[storage]),
        "api": stack.start("api", "api", mounts=[quality]),
        # a command spelled out rather than a role: the HEALTHCHECK knows it as well
        "exporter": stack.start("exporter", "latam", "exporter"),
        "ui-proxy": stack.start(
            "ui-proxy", "ui-proxy", mounts=[ui_users],
            env={
                "LATAM_UI_ANALYST_UPSTREAM": webserver_at,
                "LATAM_UI_OPERATOR_UPSTREAM": webserver_at,
            },
        ),
    }  # fmt: skip
    for role, name in names.items():
        timings[f"healthy {role}"] = stack.wait_healthy(name, timeout=240)
    timings["stack healthy"] = time.monotonic() - started

    # 3. a key for the API, then events on the broker
    created = stack.run("api-key", "create", "--name", "images-smoke", "--scopes", "flights:read")
    assert created.returncode == 0, created.stdout + created.stderr
    key = created.stdout.strip().splitlines()[-1]
    published = stack.run(
        "simulate", "--events", str(EVENTS), "--seed", str(SEED), "--rate", "1000",
        "--invalid", "0", "--duplicates", "0", "--out-of-order", "0",
    )  # fmt: skip
    assert published.returncode == 0, published.stdout + published.stderr
    assert f"published {EVENTS} messages" in published.stdout + published.stderr

    # 4. the daemon's sensors drain the queues into raw, the runs update curated
    def raw_rows() -> int:
        sql = (
            "SELECT (SELECT count(*) FROM raw.flight_events)"
            " + (SELECT count(*) FROM raw.passenger_events)"
            " + (SELECT count(*) FROM raw.position_reports)"
        )
        return query(warehouse_url, sql)[0][0]

    wait_for(lambda: raw_rows() == EVENTS, 360, f"{EVENTS} events drained into raw", stack)
    assert all(d == 0 for d in queue_depths(ctx["amqp_url"], ctx["topology"]).values())
    assert query(warehouse_url, "SELECT count(*) FROM raw.quarantine")[0][0] == 0
    timings["drained"] = time.monotonic() - started

    def curated_flights() -> set[str]:
        return {r[0] for r in query(warehouse_url, "SELECT flight_key FROM curated.fact_flight")}

    expected_flights = {
        r[0] for r in query(warehouse_url, "SELECT DISTINCT flight_key FROM raw.flight_events")
    }
    wait_for(
        lambda: curated_flights() == expected_flights,
        240,
        "every drained flight in curated.fact_flight",
        stack,
    )
    timings["curated"] = time.monotonic() - started

    # the drain runs' data-quality checks ran in the code location's container too (Great
    # Expectations, its results on the quality volume), and no run failed
    wait_for(
        lambda: query(warehouse_url, "SELECT count(*) FROM quality.validation")[0][0] > 0,
        240,
        "the drain runs' data-quality checks recorded",
        stack,
    )
    runs = dict(query(ctx["dagster_url"], "SELECT status, count(*) FROM runs GROUP BY status"))
    assert runs.get("SUCCESS", 0) > 0 and not runs.get("FAILURE"), runs
    timings["checked"] = time.monotonic() - started

    # ... and the API, reading as its own role, serves exactly those flights
    api = f"http://127.0.0.1:{ports['api']}"
    auth = {"Authorization": f"Bearer {key}"}
    assert http(f"{api}/api/v1/flights?limit=5")[0] == 401
    served: list[dict[str, Any]] = []
    cursor = ""
    while True:
        status, body = http(f"{api}/api/v1/flights?limit=100{cursor}", auth)
        assert status == 200, body
        page = json.loads(body)
        served += page["data"]
        if not page["next_cursor"]:
            break
        cursor = f"&cursor={page['next_cursor']}"
    assert {f["flight_key"] for f in served} == expected_flights
    one = served[0]["flight_key"]
    status, body = http(f"{api}/api/v1/flights/{one}", auth)
    assert status == 200 and json.loads(body)["data"]["flight_key"] == one
    assert http(f"{api}/readyz")[0] == 200

    # 5. the exporter sees the drained queues; the proxy guards the UI and passes a login through
    status, body = http(f"http://127.0.0.1:{ports['exporter']}/metrics")
    assert status == 200 and b"latam_" in body
    ui = f"http://127.0.0.1:{ports['ui']}"
    assert http(f"{ui}/server_info")[0] == 401
    login = base64.b64encode(f"{UI_USER}:{UI_PASSWORD}".encode()).decode()
    status, body = http(f"{ui}/server_info", {"Authorization": f"Basic {login}"})
    assert status == 200 and b"dagster_webserver_version" in body, body[:200]
    timings["total"] = time.monotonic() - started
    print("image smoke test: " + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()))
