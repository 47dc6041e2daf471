"""The REST API's settings: read by `latam_dagster.settings.ApiConfig`, completed here.

The API reads the warehouse as the read-only role `latam_api_reader`: by default the URL is
LATAM_WAREHOUSE_URL with its user replaced by that role (and its password dropped), so one
setting serves the pipeline and the API locally; production sets LATAM_API_DATABASE_URL. The
derivation lives here, not in the settings module, because settings sits below api_service.
"""

from __future__ import annotations

import secrets
from urllib.parse import quote, urlsplit, urlunsplit

from latam_dagster.settings import ApiConfig, get_settings, libpq_url

__all__ = ["GENERATED_SESSION_SECRET", "READ_ONLY_ROLE", "ApiConfig", "get_api_config", "role_url"]

READ_ONLY_ROLE = "latam_api_reader"
# Signs browser sessions when LATAM_API_SESSION_SECRET is unset. Made once per process at import:
# the gunicorn master imports this module before it forks, so all its workers share it.
GENERATED_SESSION_SECRET = secrets.token_urlsafe(32)


def role_url(url: str, role: str, password: str | None = None) -> str:
    """`url` with its user (and password) replaced, in the libpq form psycopg2 accepts."""
    parts = urlsplit(libpq_url(url))
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 literal keeps its brackets
        host = f"[{host}]"
    if parts.port:
        host = f"{host}:{parts.port}"
    user = quote(role, safe="")
    if password:
        user = f"{user}:{quote(password, safe='')}"
    return urlunsplit(parts._replace(netloc=f"{user}@{host}"))


def get_api_config(**overrides: object) -> ApiConfig:
    """Read the API settings from the environment now; keyword arguments override them."""
    config = ApiConfig(**overrides)
    if config.database_url:
        return config
    password = config.database_password
    url = role_url(
        get_settings().warehouse_url,
        READ_ONLY_ROLE,
        password.get_secret_value() if password else None,
    )
    return config.model_copy(update={"database_url": url})
