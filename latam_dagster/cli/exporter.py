"""`latam exporter`: serve the pipeline's metrics to Prometheus until stopped."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

import click
from click.decorators import FC

log = logging.getLogger("latam_dagster.observability")


def setting_option(
    flag: str, setting: str, default: object, help: str, **kwargs: Any
) -> Callable[[FC], FC]:
    """An option that, when given, overrides the environment `setting` (itself `default` when
    unset); its help names both."""
    return click.option(flag, default=None, help=f"{help} [{setting}, {default}].", **kwargs)


@click.command("exporter")
@setting_option("--host", "LATAM_EXPORTER_HOST", "127.0.0.1", "Listen address")
@setting_option("--port", "LATAM_EXPORTER_PORT", 9808, "Listen port", type=int)
@setting_option(
    "--interval",
    "LATAM_EXPORTER_INTERVAL_SECONDS",
    5,
    "Seconds between collections",
    type=click.FloatRange(min=0.5),
)
@click.option("--no-dagster", is_flag=True, help="Do not read the Dagster instance.")
@click.option("--once", is_flag=True, help="Collect once, print the metrics and exit.")
def exporter(
    host: str | None, port: int | None, interval: float | None, no_dagster: bool, once: bool
) -> None:
    """Serve RabbitMQ, warehouse and Dagster metrics for Prometheus at /metrics.

    Reads the warehouse as the read-only role latam_exporter. Refuses to start (exit status 2)
    when the warehouse schema does not match the code (its queries name this version's tables,
    and it never migrates), and with LATAM_ENV=production on a missing or default secret.
    """
    from latam_dagster import db
    from latam_dagster.observability.config import exporter_database_url, get_exporter_config
    from latam_dagster.observability.exporter import build_exporter
    from latam_dagster.observability.logging import configure_logging
    from latam_dagster.settings import refuse_default_secrets

    overrides: dict[str, object] = {}
    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    if interval is not None:
        overrides["interval_seconds"] = interval
    config = get_exporter_config(**overrides)
    if not no_dagster:
        refuse_default_secrets(config.settings.default_secrets("dagster_pg_url"), config.settings)
    configure_logging("exporter")
    try:
        db.require_schema_as(exporter_database_url(config), config.settings.warehouse_url)
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
