"""`latam exporter`: serve the pipeline's metrics to Prometheus until stopped."""

from __future__ import annotations

import logging
import signal
import sys
import threading

import click

log = logging.getLogger("latam_dagster.observability")


@click.command("exporter")
@click.option("--host", default=None, help="Listen address [LATAM_EXPORTER_HOST, 127.0.0.1].")
@click.option("--port", default=None, type=int, help="Listen port [LATAM_EXPORTER_PORT, 9808].")
@click.option(
    "--interval",
    default=None,
    type=click.FloatRange(min=0.5),
    help="Seconds between collections [LATAM_EXPORTER_INTERVAL_SECONDS, 5].",
)
@click.option("--no-dagster", is_flag=True, help="Do not read the Dagster instance.")
@click.option("--once", is_flag=True, help="Collect once, print the metrics and exit.")
def exporter(
    host: str | None, port: int | None, interval: float | None, no_dagster: bool, once: bool
) -> None:
    """Serve RabbitMQ, warehouse and Dagster metrics for Prometheus at /metrics.

    Refuses to start (exit status 2) when the warehouse schema does not match the code: its
    queries name this version's tables, and it never migrates.
    """
    from latam_dagster import db
    from latam_dagster.observability.config import get_exporter_config
    from latam_dagster.observability.exporter import build_exporter
    from latam_dagster.observability.logging import configure_logging

    configure_logging("exporter")
    overrides: dict[str, object] = {}
    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    if interval is not None:
        overrides["interval_seconds"] = interval
    config = get_exporter_config(**overrides)
    try:
        db.require_schema(config.settings.warehouse_url)
    except db.WarehouseUnavailable as exc:
        # a warehouse that is down is what the exporter reports, not a reason not to start
        log.warning("schema version not checked: %s", exc, extra={"event": "schema_unchecked"})
    exp = build_exporter(config, with_dagster=not no_dagster)
    if once:
        results = exp.collect_once()
        sys.stdout.write(exp.exposition().decode())
        sys.exit(0 if all(results.values()) else 1)
    server = exp.serve(config.host, config.port)
    exp.start()
    log.info(
        "exporter serving http://%s:%s/metrics, collecting every %ss",
        config.host,
        config.port,
        config.interval_seconds,
        extra={"event": "exporter_started"},
    )
    stopped = threading.Event()

    def _stop(signum, _frame) -> None:
        stopped.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    stopped.wait()
    exp.stop()
    server.shutdown()
    log.info("exporter stopped", extra={"event": "exporter_stopped"})
