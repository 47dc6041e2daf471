"""The metrics exporter's settings: read by `latam_dagster.settings.ExporterConfig`, completed here.

The exporter reads the same LATAM_* settings as the pipeline (warehouse, broker, topology prefix,
DAGSTER_HOME) plus its own, which the README's settings table lists. The management API's
default comes from the AMQP URL, which is the broker knowledge this module holds. The warehouse
is read as the read-only role latam_exporter: by default LATAM_WAREHOUSE_URL with that user and
LATAM_EXPORTER_DATABASE_PASSWORD, or LATAM_EXPORTER_DATABASE_URL.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from latam_dagster.ingest.topology import amqp_urls
from latam_dagster.settings import (
    EXPORTER_ROLE,
    ExporterConfig,
    credentials_problem,
    libpq_url,
    refuse_default_secrets,
    role_database_problem,
    role_url,
)

__all__ = [
    "ExporterConfig",
    "exporter_database_url",
    "get_exporter_config",
    "management_url_from_amqp",
    "vhost_of",
]

_OFF = ("off", "none", "0")


def management_url_from_amqp(amqp_url: str, port: int = 15672) -> str:
    """The RabbitMQ management API base URL on the broker's host (the first node of a list),
    with the AMQP credentials."""
    parts = urlsplit(amqp_urls(amqp_url)[0])
    user = parts.username or "guest"
    password = parts.password or "guest"
    host = parts.hostname or "localhost"
    if ":" in host:
        host = f"[{host}]"
    scheme = "https" if parts.scheme == "amqps" else "http"
    return f"{scheme}://{user}:{password}@{host}:{port}"


def vhost_of(amqp_url: str) -> str:
    """The vhost an AMQP URL names (`/` when the path is empty; every node of a list names
    the same)."""
    path = urlsplit(amqp_urls(amqp_url)[0]).path
    return unquote(path[1:]) if len(path) > 1 else "/"


def exporter_database_url(config: ExporterConfig) -> str:
    """The URL the exporter reads the warehouse with, as the role latam_exporter."""
    if config.database_url:
        return libpq_url(config.database_url)
    password = config.database_password
    return role_url(
        config.settings.warehouse_url,
        EXPORTER_ROLE,
        password.get_secret_value() if password else None,
    )


def get_exporter_config(**overrides: object) -> ExporterConfig:
    """Read the exporter settings from the environment now; keyword arguments override them.

    With LATAM_ENV=production it raises `InsecureSettings` while the exporter's database login,
    the broker's credentials or those of a management URL set apart are missing or defaults.
    """
    config = ExporterConfig(**overrides)
    settings = config.settings
    explicit_mgmt = config.management_url
    refuse_default_secrets(
        [
            role_database_problem(
                "LATAM_EXPORTER_DATABASE", config.database_url, config.database_password
            ),
            *settings.default_secrets("amqp_url"),
            credentials_problem("LATAM_RABBITMQ_MANAGEMENT_URL", explicit_mgmt)
            if explicit_mgmt and explicit_mgmt.lower() not in _OFF
            else None,
        ],
        settings,
    )
    update: dict[str, object] = {"database_url": exporter_database_url(config)}
    if "management_url" not in overrides:
        mgmt = config.management_url or management_url_from_amqp(settings.amqp_url)
        update["management_url"] = None if mgmt.lower() in _OFF else mgmt.rstrip("/")
    return config.model_copy(update=update)
