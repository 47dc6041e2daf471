"""Settings of the metrics exporter, read from the environment with local defaults.

The exporter reads the same LATAM_* settings as the pipeline (warehouse, broker, topology prefix,
DAGSTER_HOME) plus the few below, which the README's settings table lists.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from latam_dagster.settings import Settings, get_settings


def _env(name: str, default: str) -> str:
    value = os.environ.get(name)
    return default if value is None or value == "" else value


def management_url_from_amqp(amqp_url: str, port: int = 15672) -> str:
    """The RabbitMQ management API base URL on the broker's host, with the AMQP credentials."""
    parts = urlsplit(amqp_url)
    user = parts.username or "guest"
    password = parts.password or "guest"
    host = parts.hostname or "localhost"
    if ":" in host:
        host = f"[{host}]"
    scheme = "https" if parts.scheme == "amqps" else "http"
    return f"{scheme}://{user}:{password}@{host}:{port}"


def vhost_of(amqp_url: str) -> str:
    """The vhost an AMQP URL names (`/` when the path is empty)."""
    path = urlsplit(amqp_url).path
    return unquote(path[1:]) if len(path) > 1 else "/"


@dataclass(frozen=True)
class ExporterConfig:
    """Typed view of the exporter's environment."""

    host: str
    """LATAM_EXPORTER_HOST: address the exporter listens on."""
    port: int
    """LATAM_EXPORTER_PORT: port of the exporter's /metrics."""
    interval_seconds: float
    """LATAM_EXPORTER_INTERVAL_SECONDS: how often the exporter reads broker, warehouse and Dagster."""
    management_url: str | None
    """LATAM_RABBITMQ_MANAGEMENT_URL: RabbitMQ management API (default: the AMQP host, port 15672,
    same credentials); `off` disables it (then no unacked counts and no oldest-message age)."""
    exact_count_max_rows: int
    """LATAM_EXPORTER_EXACT_COUNT_MAX_ROWS: tables estimated below this size are counted exactly;
    larger ones report the planner's live-row estimate."""
    max_source_systems: int
    """LATAM_EXPORTER_MAX_SOURCE_SYSTEMS: distinct source_system label values before the rest
    are reported as `other` (keeps the number of series bounded)."""
    queue_age_window_seconds: float
    """LATAM_EXPORTER_QUEUE_AGE_WINDOW_SECONDS: publish-counter history kept to date the oldest
    message; older heads are reported as at least this old."""
    statement_timeout_ms: int
    """LATAM_EXPORTER_STATEMENT_TIMEOUT_MS: longest query the exporter lets run."""
    settings: Settings

    @property
    def vhost(self) -> str:
        return vhost_of(self.settings.amqp_url)


def get_exporter_config(**overrides: object) -> ExporterConfig:
    """Read the exporter settings from the environment now; keyword arguments override them."""
    settings = get_settings()
    mgmt = _env("LATAM_RABBITMQ_MANAGEMENT_URL", management_url_from_amqp(settings.amqp_url))
    values: dict[str, object] = {
        "host": _env("LATAM_EXPORTER_HOST", "127.0.0.1"),
        "port": int(_env("LATAM_EXPORTER_PORT", "9808")),
        "interval_seconds": float(_env("LATAM_EXPORTER_INTERVAL_SECONDS", "5")),
        "management_url": None if mgmt.lower() in ("off", "none", "0") else mgmt.rstrip("/"),
        "exact_count_max_rows": int(_env("LATAM_EXPORTER_EXACT_COUNT_MAX_ROWS", "1000000")),
        "max_source_systems": int(_env("LATAM_EXPORTER_MAX_SOURCE_SYSTEMS", "500")),
        "queue_age_window_seconds": float(_env("LATAM_EXPORTER_QUEUE_AGE_WINDOW_SECONDS", "21600")),
        "statement_timeout_ms": int(_env("LATAM_EXPORTER_STATEMENT_TIMEOUT_MS", "15000")),
        "settings": settings,
    }
    values.update(overrides)
    return ExporterConfig(**values)  # type: ignore[arg-type]
