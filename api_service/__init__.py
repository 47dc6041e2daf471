"""The LATAM REST API: read-only access to the curated layer, the marts and data-quality results.

`create_app()` is the app factory (`gunicorn 'api_service:create_app()'`). It reads its settings
from the environment (see `api_service.config`) unless a config is passed, which tests do.
"""

from __future__ import annotations

from apiflask import APIFlask

from api_service.auth import KeyVerifier
from api_service.config import ApiConfig, get_api_config
from api_service.context import EXTENSION, Services
from api_service.db import Database
from latam_dagster.tables import Registry

__all__ = ["create_app"]

API_DESCRIPTION = """\
Read-only access to the LATAM airline data platform: curated flights and their passenger loads,
flight status histories, daily route and airport marts, aircraft positions and data-quality results.

Every `/api/v1` and `/quality` request needs `Authorization: Bearer <key>`; keys come from
`latam api-key create --name NAME`. In a browser, `/quality/login` exchanges a key with the
`quality:read` scope for a session cookie that opens the quality report and Data Docs. Lists answer `{"data": [...], "next_cursor": ...}`: pass
`next_cursor` back as `cursor` for the next page (`limit` 1..1000, default 100). `?format=csv` or
`Accept: text/csv` answers CSV (the cursor is then in the `X-Next-Cursor` header). Responses carry
an ETag; send it back in `If-None-Match` to get a 304 while nothing changed. Timestamps are
RFC 3339 in UTC. Errors are `application/problem+json`. Requests are rate limited per key and
per client address: past a limit the answer is 429, with `Retry-After` in seconds.
"""


def create_app(config: ApiConfig | None = None, registry: Registry | None = None) -> APIFlask:
    """Build the API for `config` (default: from the environment), serving the row endpoints
    the table registry declares (default: the platform's registry)."""
    from api_service import airports, flights, health, quality, quality_site, routes
    from api_service.browser_session import init_browser_sessions
    from api_service.caching import init_caching
    from api_service.docs_assets import init_docs
    from api_service.errors import register_error_handlers
    from api_service.limits import init_limits
    from api_service.metrics import init_metrics
    from api_service.openapi import configure_openapi
    from api_service.request_guard import init_request_guard
    from api_service.rows import row_blueprints
    from api_service.security_headers import init_security_headers
    from latam_dagster.observability.flask_logging import init_request_logging
    from latam_dagster.tables import REGISTRY

    config = config or get_api_config()
    app = APIFlask(
        __name__,
        title="LATAM airline data API",
        version="1.0.0",
        spec_path="/openapi.json",
        docs_path="/docs",
        docs_ui="swagger-ui",
    )
    # `/api/v1/flights//events` would otherwise redirect to another resource: an empty path
    # parameter is a 404 like any other path that names nothing
    app.url_map.merge_slashes = False
    app.config["TESTING"] = config.testing
    app.json.sort_keys = False  # type: ignore[attr-defined]
    configure_openapi(app, API_DESCRIPTION)
    init_docs(app)

    db = Database(config.database_url, config.threads, config.statement_timeout_ms)
    app.extensions[EXTENSION] = Services(config, db, KeyVerifier(db, config.key_cache_seconds))

    init_metrics(app)
    init_request_logging(app)
    init_limits(app, config)
    init_request_guard(app)
    register_error_handlers(app)
    init_caching(app)
    init_security_headers(app, config)
    for module in (health, flights, routes, airports, quality):
        app.register_blueprint(module.bp)
    for bp in row_blueprints(registry or REGISTRY):
        app.register_blueprint(bp)
    app.register_blueprint(quality.docs_bp)
    app.register_blueprint(quality_site.bp)
    init_browser_sessions(app, config)
    return app
