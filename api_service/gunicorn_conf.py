"""gunicorn settings of the API: `gunicorn -c python:api_service.gunicorn_conf 'api_service:create_app()'`.

Threaded workers (gthread) keep connections alive and overlap database waits; each worker holds
one database connection per thread. Every value comes from the API settings, so `latam api`,
a container and a Kubernetes Deployment all configure it the same way.

The master serves the Prometheus metrics of all its workers on a listener of its own
(LATAM_API_METRICS_HOST:LATAM_API_METRICS_PORT), never on the API's port: see `when_ready`.
"""

import os

from prometheus_client import multiprocess

from api_service.config import get_api_config
from latam_dagster.observability.logging import gunicorn_logconfig
from latam_dagster.settings import get_settings

_config = get_api_config()

bind = f"{_config.host}:{_config.port}"
workers = _config.workers
threads = _config.threads
worker_class = "gthread"
keepalive = 5
timeout = 30
graceful_timeout = 20
max_requests = 100_000
max_requests_jitter = 10_000
# one JSON line per request comes from the app itself (request id, route, status, duration)
accesslog = None
errorlog = "-"
loglevel = get_settings().log_level.lower()
logconfig_dict = gunicorn_logconfig("api", get_settings().log_level.upper())
proc_name = "latam-api"


def when_ready(server) -> None:
    """Serve the workers' metrics, added up, on the metrics listener. Only in multiprocess mode
    (`latam api` sets PROMETHEUS_MULTIPROC_DIR): without it the master would see no worker's
    counts. A listener that cannot bind is logged and the API serves on without it (Prometheus
    then reports the target down)."""
    from api_service.metrics import multiprocess_registry, serve_metrics

    host, port = _config.metrics_host, _config.metrics_port
    if not port:
        return
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        server.log.warning("PROMETHEUS_MULTIPROC_DIR is not set: no metrics listener")
        return
    try:
        serve_metrics(host, port, multiprocess_registry())
    except OSError as exc:
        server.log.error("cannot serve metrics on %s:%s: %s", host, port, exc)
        return
    server.log.info("metrics for Prometheus at http://%s:%s/metrics", host, port)


def post_worker_init(worker) -> None:
    """Move the loaded app's objects out of the garbage collector's sight: they live as long as
    the worker, and scanning them again and again cost a sizeable share of every request."""
    import gc

    gc.collect()
    gc.freeze()


def child_exit(server, worker) -> None:
    """Drop the exiting worker's live gauges from the shared metrics files."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)
