"""Prometheus metrics of the API: requests by route and status, latency, requests in flight.

Routes are labelled by their URL rule (`/api/v1/flights/<flight_key>`), never by the raw path, so
the number of series stays fixed. Under gunicorn every worker is a process: `latam api` sets
PROMETHEUS_MULTIPROC_DIR and `/metrics` then adds up the files all workers write.
"""

from __future__ import annotations

import os
import time

from flask import Flask, Response, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
UNMATCHED = "<unmatched>"


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
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)


def _route() -> str:
    rule = request.url_rule
    return rule.rule if rule is not None else UNMATCHED


def init_metrics(app: Flask) -> ApiMetrics:
    """Instrument every request of `app` and serve `/metrics`."""
    metrics = ApiMetrics()

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

    @app.get("/metrics")
    @app.doc(hide=True)
    def prometheus_metrics() -> Response:
        return Response(metrics.exposition(), mimetype=CONTENT_TYPE_LATEST)

    return metrics
