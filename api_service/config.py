"""Settings of the REST API, read from the environment the same way `latam_dagster.settings` is.

The API reads the warehouse as the read-only role `latam_api_reader`: by default the URL is
LATAM_WAREHOUSE_URL with its user replaced by that role (and its password dropped), so one
setting serves the pipeline and the API locally; production sets LATAM_API_DATABASE_URL.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, replace
from urllib.parse import quote, urlsplit, urlunsplit

from latam_dagster.quality.settings import get_quality_settings
from latam_dagster.settings import get_settings, libpq_url

READ_ONLY_ROLE = "latam_api_reader"
# Signs browser sessions when LATAM_API_SESSION_SECRET is unset. Made once per process at import:
# the gunicorn master imports this module before it forks, so all its workers share it.
GENERATED_SESSION_SECRET = secrets.token_urlsafe(32)


def _env(name: str, default: str) -> str:
    value = os.environ.get(name)
    return default if value is None or value == "" else value


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


@dataclass(frozen=True)
class ApiConfig:
    """Typed view of the API's environment. Field docs double as the README's settings table."""

    database_url: str
    """LATAM_API_DATABASE_URL: database the API reads, as the read-only role (default: derived)."""
    host: str
    """LATAM_API_HOST: address `latam api` binds."""
    port: int
    """LATAM_API_PORT: port `latam api` binds."""
    workers: int
    """LATAM_API_WORKERS: gunicorn worker processes."""
    threads: int
    """LATAM_API_THREADS: threads per worker (and database connections per worker)."""
    cursor_secret: str
    """LATAM_API_CURSOR_SECRET: key that signs pagination cursors (same on every replica)."""
    key_cache_seconds: float
    """LATAM_API_KEY_CACHE_SECONDS: how long a worker trusts a key lookup (revocation delay)."""
    statement_timeout_ms: int
    """LATAM_API_STATEMENT_TIMEOUT_MS: longest query the API lets run."""
    data_docs_dir: str
    """LATAM_QUALITY_DOCS_DIR (the quality layer's setting): Data Docs site served at /quality/docs/."""
    session_secret: str = ""
    """LATAM_API_SESSION_SECRET: key that signs the quality report's browser sessions (same on
    every replica); unset, a random one per API process, so sessions end when it restarts."""
    testing: bool = False


def get_api_config(**overrides: object) -> ApiConfig:
    """Read the API settings from the environment now; keyword arguments override them."""
    base = get_settings()
    url = os.environ.get("LATAM_API_DATABASE_URL") or role_url(
        base.warehouse_url, READ_ONLY_ROLE, os.environ.get("LATAM_API_DATABASE_PASSWORD")
    )
    config = ApiConfig(
        database_url=libpq_url(url),
        host=_env("LATAM_API_HOST", "127.0.0.1"),
        port=int(_env("LATAM_API_PORT", "8080")),
        workers=int(_env("LATAM_API_WORKERS", "2")),
        threads=int(_env("LATAM_API_THREADS", "4")),
        cursor_secret=_env("LATAM_API_CURSOR_SECRET", "local-dev-only-change-me"),
        key_cache_seconds=float(_env("LATAM_API_KEY_CACHE_SECONDS", "5")),
        statement_timeout_ms=int(_env("LATAM_API_STATEMENT_TIMEOUT_MS", "5000")),
        data_docs_dir=get_quality_settings().data_docs_dir,
        session_secret=_env("LATAM_API_SESSION_SECRET", ""),
    )
    return replace(config, **overrides) if overrides else config  # type: ignore[arg-type]
