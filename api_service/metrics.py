"""Prometheus metrics of the API: requests by route and status, latency, requests in flight.

Routes are labelled by their URL rule (`/api/v1/flights/<flight_key>`), never by the raw path, so
the number of series stays fixed.

The metrics are not served on the API's own port (which answers 404 at `/metrics`): they tell
anyone who reads them the routes, traffic and error rates of the service, and a scrape is not
an API request. They have a listener of their own, LATAM_API_METRICS_HOST:LATAM_API_METRICS_PORT
(default 127.0.0.1:9809), for Prometheus only. Under gunicorn every worker is a process: `latam
api` sets PROMETHEUS_MULTIPROC_DIR, each worker writes its counts there, and the gunicorn master
serves the listener, adding up the files of all workers (`api_service.gunicorn_conf`). An app
served otherwise (tests) is given a listener with `serve_metrics(host, port,
metrics_of(app).registry)`.
"""

from __future__ import annotations

import os
import threading
import time
from wsgiref.simple_server import WSGIServer

from flask import Flask, Response, g, request
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)

BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
UNMATCHED = "<unmatched>"
EXTENSION = "latam_api_metrics"


def multiprocess_registry() -> CollectorRegistry:
    """A registry that adds up what every worker wrote to PROMETHEUS_MULTIPROC_DIR."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


class ApiMetrics:
    """The metric objects of one app (a registry of its own, so tests can build many apps)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "latam_api_requests_total",
            "HTTP requests answered, by route, method and status code.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "latam_api_request_duration_seconds",
            "Time to answer a request, by route and method.",
            ["route", "method"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "latam_api_requests_in_flight",
            "Requests being answered right now.",
            registry=self.registry,
            multiprocess_mode="livesum",
        )

    def exposition(self) -> bytes:
        """The text a scrape gets: all workers' counts in multiprocess mode, else this app's."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            return generate_latest(multiprocess_registry())
        return generate_latest(self.registry)


def _route() -> str:
    rule = request.url_rule
    return rule.rule if rule is not None else UNMATCHED


def metrics_of(app: Flask) -> ApiMetrics:
    """The metrics `init_metrics` attached to `app`."""
    return app.extensions[EXTENSION]


def serve_metrics(
    host: str, port: int, registry: CollectorRegistry
) -> tuple[WSGIServer, threading.Thread]:
    """Serve `registry` at http://host:port/metrics from a daemon thread; `.shutdown()` the
    returned server to stop."""
    return start_http_server(port, addr=host, registry=registry)


def init_metrics(app: Flask) -> ApiMetrics:
    """Instrument every request of `app` (served by `serve_metrics`, not by `app` itself)."""
    metrics = ApiMetrics()
    app.extensions[EXTENSION] = metrics

    @app.before_request
    def _start() -> None:
        g.metrics_started = time.perf_counter()
        metrics.in_flight.inc()

    @app.after_request
    def _observe(response: Response) -> Response:
        started = g.pop("metrics_started", None)
        if started is not None:
            route, method = _route(), request.method
            metrics.latency.labels(route, method).observe(time.perf_counter() - started)
            metrics.requests.labels(route, method, str(response.status_code)).inc()
            metrics.in_flight.dec()
        return response

    @app.teardown_request
    def _abandoned(_exc: BaseException | None) -> None:
        # after_request did not run (the response failed to build): keep the gauge honest
        if g.pop("metrics_started", None) is not None:
            metrics.in_flight.dec()

    return metrics
