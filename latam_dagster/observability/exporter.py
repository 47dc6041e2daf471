"""The metrics exporter: a long-running process serving the pipeline's state as Prometheus metrics.

Every `interval` seconds it asks each source (RabbitMQ, the warehouse, the Dagster instance) for
its metrics and keeps the result; a scrape serves the latest result and never touches a source,
so any number of Prometheus replicas can scrape without multiplying the load on Postgres or the
broker. A source that fails leaves its metrics out (never stale values) and shows as
`latam_exporter_collect_success{source="..."} 0`, with the error in the log.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Protocol

from prometheus_client import CollectorRegistry, generate_latest, start_http_server
from prometheus_client.core import Metric

from latam_dagster.ingest.topology import Topology
from latam_dagster.observability.broker import BrokerCollector
from latam_dagster.observability.config import exporter_database_url, vhost_of
from latam_dagster.observability.dagster_state import DagsterCollector
from latam_dagster.observability.families import Families
from latam_dagster.observability.warehouse import WarehouseCollector
from latam_dagster.settings import ExporterConfig, normalize_pg_url

log = logging.getLogger(__name__)


class Source(Protocol):
    """One place the exporter reads: a name and a collect() that fills a Families."""

    name: str

    def collect(self, out: Families) -> None: ...


class Exporter:
    """Collects from every source on an interval; is the prometheus_client collector serving it."""

    def __init__(self, sources: Iterable[Source], interval_seconds: float = 5.0) -> None:
        self.sources = list(sources)
        self.interval = interval_seconds
        self._lock = threading.Lock()
        self._latest: dict[str, list[Metric]] = {}
        self._status: dict[str, tuple[bool, float, float]] = {}  # success, seconds, last success
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.collections = 0
        self._failing: set[str] = set()

    def collect_once(self) -> dict[str, bool]:
        """Read every source once; returns success per source."""
        results: dict[str, bool] = {}
        for source in self.sources:
            started = time.perf_counter()
            out = Families()
            try:
                source.collect(out)
                ok = True
                if source.name in self._failing:
                    self._failing.discard(source.name)
                    log.info("collecting %s metrics works again", source.name)
            except Exception as exc:
                ok = False
                if source.name not in self._failing:  # the traceback once per outage
                    self._failing.add(source.name)
                    log.exception("collecting %s metrics failed", source.name)
                else:
                    log.debug("collecting %s metrics still fails: %s", source.name, exc)
            seconds = time.perf_counter() - started
            with self._lock:
                previous = self._status.get(source.name, (False, 0.0, 0.0))[2]
                self._status[source.name] = (ok, seconds, time.time() if ok else previous)
                if ok:
                    self._latest[source.name] = out.metrics()
                else:
                    self._latest.pop(source.name, None)
            results[source.name] = ok
        self.collections += 1
        return results

    def collect(self) -> Iterator[Metric]:
        """The prometheus_client Collector interface: the latest metrics plus our own health."""
        with self._lock:
            latest = [m for metrics in self._latest.values() for m in metrics]
            status = dict(self._status)
        yield from latest
        own = Families()
        for name, (ok, seconds, last_ok) in sorted(status.items()):
            own.gauge(
                "latam_exporter_collect_success",
                "1 when the latest collection from the source succeeded.",
                1 if ok else 0,
                source=name,
            )
            own.gauge(
                "latam_exporter_collect_duration_seconds",
                "Time the latest collection from the source took.",
                seconds,
                source=name,
            )
            own.gauge(
                "latam_exporter_last_success_timestamp_seconds",
                "When a collection from the source last succeeded (Unix time; 0: never).",
                last_ok,
                source=name,
            )
        own.counter(
            "latam_exporter_collections_total",
            "Collection rounds done since the exporter started.",
            self.collections,
        )
        yield from own.metrics()

    def registry(self) -> CollectorRegistry:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(self)  # type: ignore[arg-type]
        return registry

    def exposition(self) -> bytes:
        return generate_latest(self.registry())

    def _loop(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            self.collect_once()
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))

    def start(self) -> None:
        """Collect in a background thread until `stop()`."""
        self._thread = threading.Thread(target=self._loop, name="latam-exporter", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def serve(self, host: str, port: int):
        """Serve /metrics on host:port; returns the HTTP server (call .shutdown() to stop)."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry())
        return server


def dagster_instance_factory(dagster_home: str, dagster_pg_url: str):
    """A function opening the Dagster instance of DAGSTER_HOME (read only by the exporter)."""

    def open_instance():
        from dagster import DagsterInstance

        if not os.path.exists(os.path.join(dagster_home, "dagster.yaml")):
            raise FileNotFoundError(
                f"no dagster.yaml in DAGSTER_HOME={dagster_home}; run `latam init` first"
            )
        # the instance config reads it; dagster-postgres needs the psycopg2 form of the URL
        os.environ["LATAM_DAGSTER_PG_URL"] = normalize_pg_url(dagster_pg_url)
        return DagsterInstance.from_config(dagster_home)

    return open_instance


def build_exporter(config: ExporterConfig, with_dagster: bool = True) -> Exporter:
    """The exporter of the platform that `config` describes."""
    s = config.settings
    topology = Topology(s.topology_prefix, s.delivery_limit)
    sources: list[Source] = [
        BrokerCollector(
            s.amqp_url,
            topology,
            vhost_of(s.amqp_url),
            config.management_url,
            config.queue_age_window_seconds,
        ),
        WarehouseCollector(
            exporter_database_url(config),
            topology,
            config.exact_count_max_rows,
            config.max_source_systems,
            config.statement_timeout_ms,
            s.partition_start,
        ),
    ]
    if with_dagster:
        sources.append(
            DagsterCollector(
                dagster_instance_factory(s.dagster_home, s.dagster_pg_url), s.topology_prefix
            )
        )
    return Exporter(sources, config.interval_seconds)
