"""The interactive API docs at `/docs` (Swagger UI), with every file the page loads served here.

APIFlask's docs page loads Swagger UI's script, stylesheet and favicon from CDNs: offline (or
behind a strict firewall) it is a blank page, and every view tells those hosts who reads the
docs. The same files ship inside the installed `flask-swagger-ui` package (its swagger-ui-dist
copy; only the files are used, not its blueprint), so the API serves them under `/docs/assets/`
and points APIFlask's settings there. Like `/docs` and `/openapi.json`, they need no key: the
document describes the API, it holds no data.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

from apiflask import APIBlueprint, APIFlask, abort
from flask import Response, make_response, send_from_directory

ASSET_PATH = "/docs/assets"
ASSET_MAX_AGE = 3600
# APIFlask setting -> file of swagger-ui-dist that it names
SETTINGS = {
    "SWAGGER_UI_CSS": "swagger-ui.css",
    "SWAGGER_UI_BUNDLE_JS": "swagger-ui-bundle.js",
    "SWAGGER_UI_STANDALONE_PRESET_JS": "swagger-ui-standalone-preset.js",
    "DOCS_FAVICON": "favicon-32x32.png",
}
FILES = frozenset(SETTINGS.values())
# Swagger UI runs APIFlask's inline start-up script and sets inline styles; everything else,
# including "Try it out" requests, stays on this host.
DOCS_CSP = (
    "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)

bp = APIBlueprint("docs_assets", __name__, enable_openapi=False)


def dist_dir() -> Path:
    """The swagger-ui-dist folder of the installed package."""
    return Path(str(importlib.resources.files("flask_swagger_ui") / "dist"))


@bp.get(f"{ASSET_PATH}/<filename>")
def asset(filename: str) -> Response:
    """One of the few files the docs page loads; nothing else of the package is reachable."""
    if filename not in FILES:
        abort(404)
    response = send_from_directory(dist_dir(), filename, max_age=ASSET_MAX_AGE)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _docs_headers(view: Callable[..., Any]) -> Callable[..., Response]:
    """The docs page may load nothing from another host, even if a setting named one."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        response = make_response(view(*args, **kwargs))
        response.headers["Content-Security-Policy"] = DOCS_CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        return response

    return wrapper


def init_docs(app: APIFlask) -> None:
    """Point the docs page at the local files and serve them."""
    if app.docs_ui != "swagger-ui":
        raise ValueError("only Swagger UI is served locally; another docs UI would use a CDN")
    app.config.update({name: f"{ASSET_PATH}/{file}" for name, file in SETTINGS.items()})
    app.config.update(
        # the validator badge would send the document to an online validator
        SWAGGER_UI_CONFIG={"validatorUrl": None},
        DOCS_DECORATORS=[_docs_headers],
    )
    app.register_blueprint(bp)
