"""A real Prometheus (Debian's `prometheus`) on loopback scrapes the exporter and the API while the
pipeline runs, evaluates the project's rules, and answers queries with sensible values.

Everything listens on free loopback ports; the traffic is a few hundred events and a few dozen
API requests, bounded in count and time.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import instance_for_test, materialize
from werkzeug.serving import make_server

from latam_dagster.assets.raw import raw_assets
from latam_dagster.db import ensure_database
from latam_dagster.ingest.topology import QUEUES
from latam_dagster.observability.broker import BrokerCollector
from latam_dagster.observability.config import management_url_from_amqp, vhost_of
from latam_dagster.observability.dagster_state import DagsterCollector
from latam_dagster.observability.exporter import Exporter
from latam_dagster.observability.warehouse import WarehouseCollector
from latam_dagster.resources import RabbitMQResource, WarehouseResource
from latam_dagster.settings import normalize_pg_url
from latam_dagster.transform.airports import load_dim_airport
from latam_dagster.transform.curated import update_all
from tests.conftest import query
from tests.integration.observability_support import (
    eventually,
    free_port,
    management_available,
    publish,
    simulated,
    wait_for_depth,
)

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "infra" / "prometheus" / "rules"
EVENTS = 400


class PromClient:
    """Prometheus's HTTP API, the few calls the test needs."""

    def __init__(self, base: str) -> None:
        self.base = base

    def get(self, path: str, **params: str) -> dict:
        url = f"{self.base}{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=10) as response:
            body = json.load(response)
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict]:
        return self.get("/api/v1/query", query=expr)["result"]

    def scalar(self, expr: str) -> float:
        result = self.query(expr)
        assert len(result) == 1, (expr, result)
        return float(result[0]["value"][1])


def _prometheus_config(path: Path, exporter_port: int, api_port: int) -> None:
    path.write_text(
        json.dumps(  # JSON is YAML: the same rules the production config loads
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(RULES / "recording.yml"), str(RULES / "alerts.yml")],
                "scrape_configs": [
                    {
                        "job_name": "latam-exporter",
                        "static_configs": [{"targets": [f"127.0.0.1:{exporter_port}"]}],
                    },
                    {
                        "job_name": "latam-api",
                        "static_configs": [{"targets": [f"127.0.0.1:{api_port}"]}],
                    },
                ],
            }
        )
    )


@pytest.fixture
def prometheus_binary() -> str:
    found = shutil.which("prometheus")
    if not found:
        pytest.fail("prometheus is not installed: run infra/ci/install-tools.sh")
    return found


@pytest.fixture
def api_server(warehouse_url: str) -> Iterator[tuple[int, str, int]]:
    """The REST API on a free loopback port, reading the test warehouse as the read-only role,
    and its metrics listener on another: (API port, key, metrics port)."""
    from api_service import create_app
    from api_service.config import READ_ONLY_ROLE, get_api_config, role_url
    from api_service.metrics import metrics_of, serve_metrics
    from tests.integration.api_fixtures import new_api_key

    config = get_api_config(
        database_url=role_url(warehouse_url, READ_ONLY_ROLE),
        cursor_secret="test-cursor-secret",
        key_cache_seconds=0.0,
        ratelimit_key_prefix=f"test-{uuid.uuid4().hex}",
    )
    app = create_app(config)
    port, metrics_port = free_port(), free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    metrics_server, _ = serve_metrics("127.0.0.1", metrics_port, metrics_of(app).registry)
    yield port, new_api_key(warehouse_url), metrics_port
    metrics_server.shutdown()
    server.shutdown()
    app.extensions["latam_api"].db.close()


def _get(url: str, key: str) -> int:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_prometheus_scrapes_exporter_and_api(
    tmp_path, prometheus_binary, amqp_url, topology, warehouse_url, empty_db_url, api_server
):
    assert management_available(amqp_url), "run infra/ci/install-tools.sh (management plugin)"
    ensure_database(empty_db_url)
    storage = {"storage": {"postgres": {"postgres_url": normalize_pg_url(empty_db_url)}}}
    api_port, api_key, api_metrics_port = api_server
    with instance_for_test(overrides=storage) as instance:
        exporter = Exporter(
            [
                BrokerCollector(
                    amqp_url, topology, vhost_of(amqp_url), management_url_from_amqp(amqp_url)
                ),
                WarehouseCollector(warehouse_url, topology),
                DagsterCollector(lambda: instance, topology.prefix),
            ],
            interval_seconds=1.0,
        )
        exporter_port = free_port()
        server = exporter.serve("127.0.0.1", exporter_port)
        exporter.start()
        prom_port = free_port()
        config = tmp_path / "prometheus.yml"
        _prometheus_config(config, exporter_port, api_metrics_port)
        prom = subprocess.Popen(
            [
                prometheus_binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
                "--storage.tsdb.retention.time=1h",
                "--log.level=warn",
            ],
            stdout=subprocess.DEVNULL,
            stderr=open(tmp_path / "prometheus.log", "wb"),  # noqa: SIM115
        )
        try:
            client = PromClient(f"http://127.0.0.1:{prom_port}")
            _run_pipeline_and_traffic(
                client, amqp_url, topology, warehouse_url, instance, api_port, api_key
            )
            _check(client, topology, warehouse_url)
        finally:
            prom.terminate()
            prom.wait(30)
            exporter.stop()
            server.shutdown()


def _run_pipeline_and_traffic(
    client, amqp_url, topology, warehouse_url, instance, api_port, api_key
):
    published = publish(amqp_url, topology, simulated(21, EVENTS, systems=4, invalid=0.05))
    wait_for_depth(amqp_url, topology, published)
    _wait_until_scraped_full(client, topology)
    resources = {
        "rabbitmq": RabbitMQResource(amqp_url=amqp_url, prefix=topology.prefix),
        "warehouse": WarehouseResource(url=warehouse_url),
    }
    assert materialize(raw_assets, resources=resources, instance=instance).success
    load_dim_airport(warehouse_url)
    update_all(warehouse_url)
    base = f"http://127.0.0.1:{api_port}"
    statuses = [_get(f"{base}/api/v1/flights?limit=5", api_key) for _ in range(20)]
    statuses += [_get(f"{base}/api/v1/flights/LA9999-2020-01-01-SCL", api_key) for _ in range(5)]
    statuses += [_get(f"{base}/api/v1/flights?limit=5000", api_key) for _ in range(5)]
    assert statuses.count(200) == 20, statuses
    assert _get(f"{base}/healthz", api_key) == 200


def _assert_zero(value: float) -> None:
    assert value == 0, value


def _wait_until_scraped_full(client: PromClient, topology) -> None:
    """Prometheus has stored the full queue: its depth and the age of its oldest message."""
    flights = topology.queue("flights")

    def full() -> None:
        try:
            depth = client.scalar(f'latam_queue_depth_messages{{queue="{flights}"}}')
            age = client.scalar(f'latam_queue_oldest_message_age_seconds{{queue="{flights}"}}')
        except OSError as exc:  # Prometheus still starting
            raise AssertionError(f"Prometheus does not answer yet: {exc}") from exc
        assert depth > 0
        assert age > 0  # the broker's statistics (5 s interval) have caught up

    eventually(full, timeout=60, every=0.5)


def _check(client: PromClient, topology, warehouse_url: str) -> None:
    flights = topology.queue("flights")

    def scraped_after_pipeline() -> None:
        assert client.scalar('up{job="latam-exporter"}') == 1
        assert client.scalar('up{job="latam-api"}') == 1
        raw = sum(
            query(warehouse_url, f"SELECT count(*) FROM {t}")[0][0]
            for _f, (_p, t, _e) in QUEUES.items()
            if t
        )
        assert client.scalar("sum(latam_ingest_inserted_events_total)") == raw
        assert (
            client.scalar('sum(latam_api_requests_total{route="/api/v1/flights",status="200"})')
            >= 20
        )

    eventually(scraped_after_pipeline, timeout=90, every=1.0)

    # the queues were full, then drained: the exporter saw both
    assert client.scalar(f'max_over_time(latam_queue_depth_messages{{queue="{flights}"}}[5m])') > 0
    assert client.scalar(f'latam_queue_depth_messages{{queue="{flights}"}}') == 0
    eventually(
        lambda: _assert_zero(
            client.scalar(f'latam_queue_oldest_message_age_seconds{{queue="{flights}"}}')
        ),
        timeout=30,
        every=1.0,
    )
    quarantined = query(warehouse_url, "SELECT count(*) FROM raw.quarantine")[0][0]
    assert client.scalar("sum(latam_ingest_quarantined_messages_total)") == quarantined > 0
    received = client.scalar("sum(latam_drain_received_messages_total)")
    assert received == EVENTS
    assert client.scalar('sum(latam_drain_runs_total{status="failure"})') == 0
    assert client.scalar('latam_asset_materialization_age_seconds{asset="raw/flight_events"}') < 300
    # bad input is a 4xx, never a 5xx; latency is measured per route
    assert (
        client.scalar(
            'sum(latam_api_requests_total{route="/api/v1/flights/<flight_key>",status="404"})'
        )
        == 5
    )
    assert client.query('latam_api_requests_total{status=~"5.."}') == []
    p99 = client.scalar(
        'histogram_quantile(0.99, sum by (le) (latam_api_request_duration_seconds_bucket{route="/api/v1/flights"}))'
    )
    assert 0 < p99 < 5

    # the recording rules evaluate on these series, the alert rules load without errors
    def rules_evaluated() -> None:
        lag = client.scalar("latam:pipeline_lag_seconds")
        assert 0 <= lag < 600
        assert client.scalar("latam:freshness_sli:good") in (0, 1)
        assert client.query("latam:api_requests:rate5m")

    eventually(rules_evaluated, timeout=30, every=1.0)
    groups = client.get("/api/v1/rules")["groups"]
    rules = [r for g in groups for r in g["rules"]]
    assert len(rules) >= 40
    assert [r["name"] for r in rules if r.get("health") == "err"] == []
    firing = {a["labels"]["alertname"] for a in client.get("/api/v1/alerts")["alerts"]}
    assert not firing & {"ExporterDown", "ExporterSourceFailing", "BlockingDataQualityCheckFailed"}
