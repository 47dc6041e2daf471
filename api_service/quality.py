"""`/api/v1/quality` (latest result of every check, and history) and the Data Docs site."""

from __future__ import annotations

from pathlib import Path

from apiflask import APIBlueprint, abort
from flask import Response, send_from_directory
from marshmallow import RAISE

from api_service import queries
from api_service.context import fetch_page, protect, services
from api_service.pagination import as_datetime, as_int, as_text
from api_service.schemas import QualityHistoryQuery, QualityQuery, QualityResult, envelope

bp = APIBlueprint("quality", __name__, url_prefix="/api/v1/quality", tag="Quality")
protect(bp, "quality:read")

docs_bp = APIBlueprint("quality_docs", __name__, url_prefix="/quality", enable_openapi=False)
protect(docs_bp, "quality:read")


@bp.get("")
@bp.input(QualityQuery, location="query", arg_name="args", unknown=RAISE)
@bp.output(envelope(QualityResult, many=True))
@bp.doc(responses=[400, 401, 403])
def latest_results(args: dict) -> Response:
    """List the latest result of every check

    One row per data-quality check of each asset: its most recent evaluation (whatever the
    partition), whether it passed, the statistics and a sample of failing rows. Ordered by asset
    then check.
    """
    return fetch_page(
        "quality_latest",
        lambda after, limit: queries.quality_latest(args, after, limit),
        args,
        lambda row: (row["asset_key"], row["check_name"]),
        (as_text, as_text),
        queries.QUALITY_COLUMNS,
    )


@bp.get("/history")
@bp.input(QualityHistoryQuery, location="query", arg_name="args", unknown=RAISE)
@bp.output(envelope(QualityResult, many=True))
@bp.doc(responses=[400, 401, 403])
def result_history(args: dict) -> Response:
    """List past check results

    Every stored check evaluation, newest first, optionally of one check and/or one asset:
    the trend of a rule over runs and partitions.
    """
    return fetch_page(
        "quality_history",
        lambda after, limit: queries.quality_history(args, after, limit),
        args,
        lambda row: (row["evaluated_at"], row["evaluation_id"]),
        (as_datetime, as_int),
        queries.QUALITY_COLUMNS,
    )


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
    return send_from_directory(root, filename)
