"""The metrics exporter's settings: read by `latam_dagster.settings.ExporterConfig`, completed here.

The exporter reads the same LATAM_* settings as the pipeline (warehouse, broker, topology prefix,
DAGSTER_HOME) plus its own, which the README's settings table lists. The management API's
default comes from the AMQP URL, which is the broker knowledge this module holds.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from latam_dagster.settings import ExporterConfig

__all__ = ["ExporterConfig", "get_exporter_config", "management_url_from_amqp", "vhost_of"]

_OFF = ("off", "none", "0")


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


def get_exporter_config(**overrides: object) -> ExporterConfig:
    """Read the exporter settings from the environment now; keyword arguments override them."""
    config = ExporterConfig(**overrides)
    if "management_url" in overrides:
        return config
    mgmt = config.management_url or management_url_from_amqp(config.settings.amqp_url)
    resolved = None if mgmt.lower() in _OFF else mgmt.rstrip("/")
    return config.model_copy(update={"management_url": resolved})
