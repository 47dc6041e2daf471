"""The REST API's settings: read by `latam_dagster.settings.ApiConfig`, completed here.

The API reads the warehouse as the read-only role `latam_api_reader`: by default the URL is
LATAM_WAREHOUSE_URL with its user replaced by that role and LATAM_API_DATABASE_PASSWORD as its
password, so one setting serves every process locally; production sets that password (or
LATAM_API_DATABASE_URL), and LATAM_ENV=production refuses to start without it. The
derivation lives here, not in the settings module, because settings sits below api_service.
"""

from __future__ import annotations

import secrets

from latam_dagster.settings import (
    ApiConfig,
    get_settings,
    refuse_default_secrets,
    role_database_problem,
    role_url,
    secret_problem,
)

__all__ = ["GENERATED_SESSION_SECRET", "READ_ONLY_ROLE", "ApiConfig", "get_api_config", "role_url"]

READ_ONLY_ROLE = "latam_api_reader"
# Signs browser sessions when LATAM_API_SESSION_SECRET is unset. Made once per process at import:
# the gunicorn master imports this module before it forks, so all its workers share it.
GENERATED_SESSION_SECRET = secrets.token_urlsafe(32)


def get_api_config(**overrides: object) -> ApiConfig:
    """Read the API settings from the environment now; keyword arguments override them.

    With LATAM_ENV=production it raises `InsecureSettings` while the cursor secret or the
    database login is missing or a default, so no API process starts with them.
    """
    config = ApiConfig(**overrides)
    settings = get_settings()
    refuse_default_secrets(
        [
            secret_problem("LATAM_API_CURSOR_SECRET", config.cursor_secret),
            role_database_problem(
                "LATAM_API_DATABASE", config.database_url, config.database_password
            ),
        ],
        settings,
    )
    if config.database_url:
        return config
    password = config.database_password
    url = role_url(
        settings.warehouse_url,
        READ_ONLY_ROLE,
        password.get_secret_value() if password else None,
    )
    return config.model_copy(update={"database_url": url})
