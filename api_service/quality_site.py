"""The data-quality report a person opens in a browser: `/quality/` and `/quality/trends`.

Server-rendered HTML over the quality history the pipeline records: the latest result of every
check (failures first), the rows held back by row rules (`quality.rejects`), and charts over time
of check results (`quality.check_evaluation`) and held-back rows (`quality.audit_batch`), drawn
as inline SVG by `api_service.charts`. Pages carry no script and load only the API's own
stylesheet (and Data Docs assets, see `api_service.datadocs`) from `/quality/assets/`: the report
works offline and tells no third party who reads it. Sign-in: `api_service.browser_session`.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from apiflask import APIBlueprint, abort
from flask import Response, redirect, render_template, request, send_from_directory, url_for

from api_service import browser_session
from api_service.charts import Series, line_chart, stacked_bar_chart
from api_service.context import services
from api_service.datadocs import ASSET_LIBRARIES, vendor_dir

bp = APIBlueprint("quality_site", __name__, url_prefix="/quality", enable_openapi=False)
# signing in and out, and the stylesheets of the sign-in page, need no credential
PUBLIC = {
    "quality_site.login",
    "quality_site.login_submit",
    "quality_site.logout",
    "quality_site.asset",
}
bp.before_request(browser_session.reader_required(PUBLIC))

NEWEST_REJECTS = 50
PERIODS = (7, 30, 90)
DEFAULT_DAYS = 30
MAX_DAYS = 366
ASSET_MAX_AGE = 3600
PASSED, FAILED = "#2f855a", "#c53030"
TABLE_COLORS = ("#2b6cb0", "#d69e2e", "#805ad5", "#dd6b20", "#319795", "#b83280", "#4a5568")

# Our pages: no script at all, styles and images from the API only.
PAGE_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
# Data Docs pages run Great Expectations' inline scripts and styles, over local libraries only.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; object-src 'none'; "
    "form-action 'self'; base-uri 'self'; frame-ancestors 'none'"
)

LATEST_SQL = """
SELECT asset_key, check_name, success, severity, blocking, unexpected_count, evaluated_at
FROM quality.latest_check_result
ORDER BY success, blocking DESC, asset_key, check_name
"""
REJECT_COUNTS_SQL = """
SELECT table_name, rule, count(*) AS held_rows, min(first_seen) AS first_seen,
       max(last_seen) AS last_seen
FROM quality.rejects
GROUP BY table_name, rule
ORDER BY table_name, rule
"""
NEWEST_REJECTS_SQL = """
SELECT table_name, row_key, rule, flight_date, observed, run_id, first_seen, last_seen
FROM quality.rejects
ORDER BY last_seen DESC, table_name, row_key, rule
LIMIT %(limit)s
"""
CHECKS_PER_DAY_SQL = """
SELECT (evaluated_at AT TIME ZONE 'UTC')::date AS day,
       count(*) FILTER (WHERE success) AS passed,
       count(*) FILTER (WHERE NOT success) AS failed
FROM quality.check_evaluation
WHERE evaluated_at >= %(since)s
GROUP BY 1
ORDER BY 1
"""
AUDITS_PER_DAY_SQL = """
SELECT (audited_at AT TIME ZONE 'UTC')::date AS day, table_name,
       count(*) AS audits, sum(audited_rows) AS audited_rows, sum(held_rows) AS held_rows,
       count(*) FILTER (WHERE blocked) AS blocked
FROM quality.audit_batch
WHERE audited_at >= %(since)s
GROUP BY 1, 2
ORDER BY 1, 2
"""


@bp.after_request
def _page_headers(response: Response) -> Response:
    """Every report page: our CSP, no sniffing, no framing, no referrer to other sites."""
    if response.mimetype == "text/html":
        response.headers.setdefault("Content-Security-Policy", PAGE_CSP)
    return security_headers(response)


def security_headers(response: Response) -> Response:
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    return response


@bp.app_template_filter("utc")
def _utc(value: datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _page(template: str, status: int = 200, **context: Any) -> tuple[str, int]:
    return (
        render_template(
            template,
            reader=browser_session.current_reader(),
            generated_at=datetime.now(UTC),
            **context,
        ),
        status,
    )


# --- sign in / out --------------------------------------------------------------------------


@bp.get("/login")
def login() -> tuple[str, int]:
    """The sign-in form."""
    return _login_form()


def _login_form(error: str | None = None, status: int = 200) -> tuple[str, int]:
    target = browser_session.safe_next(request.values.get("next"), url_for(".report"))
    notice = None
    if error is None and request.args.get("signed_out"):
        notice = "You are signed out."
    return _page(
        "quality/login.html",
        status,
        error=error,
        notice=notice,
        next_url=target,
        active="login",
        session_hours=int(browser_session.LIFETIME.total_seconds() // 3600),
    )


@bp.post("/login")
def login_submit() -> Response | tuple[str, int]:
    """Check the pasted key; on success open a session and go on to the report."""
    if not browser_session.same_origin_post():
        return _login_form("This form was sent from another site; open the report here.", 403)
    owner = browser_session.check_key(request.form.get("api_key", ""))
    if owner is None:
        return _login_form(
            "That API key is not valid: it is unknown, revoked or mistyped. Paste the whole key, "
            "as latam api-key create printed it.",
            401,
        )
    if browser_session.SCOPE not in owner.scopes:
        return _login_form(
            f"The key '{owner.name}' is valid but lacks the {browser_session.SCOPE} scope "
            "the quality report needs.",
            403,
        )
    browser_session.sign_in(owner)
    target = browser_session.safe_next(request.form.get("next"), url_for(".report"))
    return redirect(target, code=303)


@bp.post("/logout")
def logout() -> Response | tuple[str, int]:
    """Close the session (the cookie is deleted) and show the sign-in form again."""
    if not browser_session.same_origin_post():
        return _login_form("This form was sent from another site.", 403)
    browser_session.sign_out()
    return redirect(url_for(".login", signed_out=1), code=303)


# --- the report -----------------------------------------------------------------------------


@bp.get("/")
def report() -> tuple[str, int]:
    """Latest result of every check, failures first, and the rows held back by row rules."""
    db = services().db
    checks = db.fetch_all(LATEST_SQL)
    reject_counts = db.fetch_all(REJECT_COUNTS_SQL)
    rejects = db.fetch_all(NEWEST_REJECTS_SQL, {"limit": NEWEST_REJECTS})
    for row in rejects:
        row["observed_text"] = _compact_json(row["observed"])
    failing = [c for c in checks if not c["success"]]
    return _page(
        "quality/report.html",
        active="report",
        checks=checks,
        failing=len(failing),
        blocking_failing=sum(1 for c in failing if c["blocking"]),
        reject_counts=reject_counts,
        held_total=sum(r["held_rows"] for r in reject_counts),
        rejects=rejects,
        newest_limit=NEWEST_REJECTS,
    )


def _compact_json(value: Any, limit: int = 240) -> str:
    text = json.dumps(value, sort_keys=True, separators=(", ", ": "), default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@bp.get("/trends")
def trends() -> tuple[str, int]:
    """Charts over the last `days` days (UTC): check results, held-back rows, share held."""
    days = _days(request.args.get("days"))
    today = datetime.now(UTC).date()
    first = today - timedelta(days=days - 1)
    since = datetime.combine(first, time(), tzinfo=UTC)
    db = services().db
    check_days = db.fetch_all(CHECKS_PER_DAY_SQL, {"since": since})
    audit_days = db.fetch_all(AUDITS_PER_DAY_SQL, {"since": since})
    dates = [first + timedelta(days=i) for i in range(days)]
    labels = [d.strftime("%b %d") for d in dates]
    return _page(
        "quality/trends.html",
        active="trends",
        days=days,
        periods=PERIODS,
        first=first,
        today=today,
        checks_chart=_checks_chart(dates, labels, check_days),
        held_chart=_audit_chart(dates, labels, audit_days, share=False),
        share_chart=_audit_chart(dates, labels, audit_days, share=True),
        check_totals={
            "passed": sum(r["passed"] for r in check_days),
            "failed": sum(r["failed"] for r in check_days),
        },
        audit_totals=_audit_totals(audit_days),
    )


def _days(value: str | None) -> int:
    if value is None:
        return DEFAULT_DAYS
    if not value.isdigit() or not 1 <= int(value) <= MAX_DAYS:
        abort(400, f"days: a whole number of days from 1 to {MAX_DAYS}")
    return int(value)


def _checks_chart(dates: list[date], labels: list[str], rows: list[dict]):
    by_day = {r["day"]: r for r in rows}
    passed = [by_day[d]["passed"] if d in by_day else 0 for d in dates]
    failed = [by_day[d]["failed"] if d in by_day else 0 for d in dates]
    return stacked_bar_chart(
        "checks-per-day",
        "Check results per day",
        labels,
        [Series("passed", passed, PASSED), Series("failed", failed, FAILED)],
        x_label="Day (UTC)",
        y_label="Check evaluations",
    )


def _audit_chart(dates: list[date], labels: list[str], rows: list[dict], share: bool):
    """Per table, one point per day with audits: rows held back, or their share of the audited
    rows (a day without an audit of the table is a gap, not a zero)."""
    per_table: dict[str, dict[date, dict]] = defaultdict(dict)
    for row in rows:
        per_table[row["table_name"]][row["day"]] = row
    series = []
    for i, (table, days) in enumerate(sorted(per_table.items())):
        values: list[float | None] = []
        for d in dates:
            row = days.get(d)
            if row is None:
                values.append(None)
            elif share:
                audited = row["audited_rows"] or 0
                values.append(round(100.0 * row["held_rows"] / audited, 2) if audited else 0.0)
            else:
                values.append(row["held_rows"])
        series.append(Series(table, values, TABLE_COLORS[i % len(TABLE_COLORS)]))
    if share:
        return line_chart(
            "held-share-per-day",
            "Share of audited rows held back, per table",
            labels,
            series,
            x_label="Day (UTC)",
            y_label="Held back (% of audited rows)",
            unit="%",
        )
    return line_chart(
        "held-rows-per-day",
        "Rows held back per day, per table",
        labels,
        series,
        x_label="Day (UTC)",
        y_label="Rows held back",
        integer=True,
    )


def _audit_totals(rows: list[dict]) -> list[dict]:
    totals: dict[str, dict] = {}
    for row in rows:
        t = totals.setdefault(
            row["table_name"],
            {"table_name": row["table_name"], "audits": 0, "audited_rows": 0, "held_rows": 0,
             "blocked": 0},
        )  # fmt: skip
        for name in ("audits", "audited_rows", "held_rows", "blocked"):
            t[name] += row[name] or 0
    for t in totals.values():
        t["held_pct"] = 100.0 * t["held_rows"] / t["audited_rows"] if t["audited_rows"] else 0.0
    return [totals[name] for name in sorted(totals)]


# --- assets ---------------------------------------------------------------------------------


@bp.get("/assets/<library>/<path:filename>")
def asset(library: str, filename: str) -> Response:
    """The report's stylesheet and the libraries the Data Docs pages use, from installed
    packages (public: the sign-in page needs them, and they hold no data)."""
    if library not in ASSET_LIBRARIES:
        abort(404)
    directory = vendor_dir(library)
    if directory is None:
        abort(404)
    return send_from_directory(directory, filename, max_age=ASSET_MAX_AGE)
