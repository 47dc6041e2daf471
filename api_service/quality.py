"""`/api/v1/quality` (latest result of every check, and history) and the Data Docs site.

The Data Docs site takes a bearer key or the quality report's browser session
(`api_service.browser_session`); its HTML and CSS are served with every CDN reference rewritten
to a local copy (`api_service.datadocs`), so a page never loads anything from another host.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from apiflask import APIBlueprint, abort
from flask import Response, send_from_directory, url_for
from werkzeug.security import safe_join

from api_service import queries
from api_service.browser_session import reader_required
from api_service.context import fetch_page, protect, services
from api_service.datadocs import GX_LOGO_FILE, Rewriter
from api_service.endpoints import list_route, listing
from api_service.pagination import as_datetime, as_int, as_text
from api_service.quality_site import DOCS_CSP, security_headers
from api_service.schemas import (
    QualityHistoryQuery,
    QualityQuery,
    QualityResult,
    RejectCount,
    RejectsQuery,
)

bp = APIBlueprint("quality", __name__, url_prefix="/api/v1/quality", tag="Quality")
protect(bp, "quality:read")
LATEST = listing("quality_latest", queries.QUALITY_COLUMNS, asset_key=as_text, check_name=as_text)
REJECTS = listing("quality_rejects", queries.REJECT_COLUMNS, table_name=as_text, rule=as_text)
HISTORY = listing(
    "quality_history", queries.QUALITY_COLUMNS, evaluated_at=as_datetime, evaluation_id=as_int
)

docs_bp = APIBlueprint("quality_docs", __name__, url_prefix="/quality", enable_openapi=False)
docs_bp.before_request(reader_required())


@list_route(bp, "", QualityQuery, QualityResult)
def latest_results(args: dict) -> Response:
    """List the latest result of every check

    One row per data-quality check of each asset: its most recent evaluation (whatever the
    partition), whether it passed, the statistics and a sample of failing rows. Ordered by asset
    then check, read from a table that is kept current as evaluations are recorded (by its key,
    with or without `asset`): no request sorts the history.
    """
    return fetch_page(LATEST, partial(queries.quality_latest, args), args)


@list_route(bp, "/rejects", RejectsQuery, RejectCount)
def reject_counts(args: dict) -> Response:
    """Count the rows held back per table and rule

    Every curated micro-batch is audited before it is published: rows failing a row rule are held
    back (not served anywhere) until they pass. One row per table and rule with the number of rows
    held back now and how long the oldest has waited. Ordered by table then rule, read from the
    (table_name, rule) index with or without `table`.
    """
    return fetch_page(REJECTS, partial(queries.quality_rejects, args), args)


@list_route(bp, "/history", QualityHistoryQuery, QualityResult)
def result_history(args: dict) -> Response:
    """List past check results

    Every stored check evaluation, newest first, optionally of one check and/or one asset:
    the trend of a rule over runs and partitions. Each combination of the two filters has an
    index in this order.
    """
    return fetch_page(HISTORY, partial(queries.quality_history, args), args)


@docs_bp.get("/docs/")
def data_docs_index() -> Response:
    """The front page of the Data Docs site."""
    return data_docs("index.html")


@docs_bp.get("/docs/<path:filename>")
def data_docs(filename: str) -> Response:
    """The Great Expectations Data Docs site, as built after the latest validations."""
    root = Path(services().config.data_docs_dir)
    if not root.is_dir():
        abort(404, "no Data Docs have been built yet; run the pipeline's quality checks")
    suffix = Path(filename).suffix.lower()
    if suffix not in (".html", ".htm", ".css"):
        return security_headers(send_from_directory(root, filename))
    path = safe_join(str(root), filename)
    if path is None or not Path(path).is_file():
        abort(404)
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    rewriter = Rewriter(
        lambda library, name: url_for("quality_site.asset", library=library, filename=name),
        url_for("quality_docs.data_docs", filename=GX_LOGO_FILE),
    )
    if suffix == ".css":
        return security_headers(Response(rewriter.css(text), mimetype="text/css"))
    response = Response(rewriter.html(text), mimetype="text/html")
    response.headers["Content-Security-Policy"] = DOCS_CSP
    return security_headers(response)
