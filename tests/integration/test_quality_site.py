"""The quality report in a browser's shoes: sign-in, the report and trend pages, Data Docs.

A warehouse of its own (cloned from the migrated template, never the shared API warehouse, whose
quality history other modules compare exactly): a real GX validation builds Data Docs, then
some days of check history, held-back rows and micro-batch audits are inserted directly, as the
pipeline would have written them. The Flask test client plays the browser (cookies included).
"""

from __future__ import annotations

import html
import json
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import itsdangerous.timed
import psycopg2.extras
import pytest

from api_service import create_app
from api_service.auth import SCOPES, revoke_key
from api_service.browser_session import COOKIE_NAME, LIFETIME
from api_service.config import READ_ONLY_ROLE, get_api_config, role_url
from api_service.datadocs import Rewriter, local_asset
from latam_dagster.db import connection
from tests.conftest import RUN_ID, _admin_exec, _db_url, drop_database
from tests.integration.api_fixtures import new_api_key

pytestmark = pytest.mark.integration

HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
PROBLEM = "application/problem+json"
SESSION_SECRET = "quality-site-test-secret"
# the report's newest-rows table shows 50; the bulk rule has more, older than the named rows
BULK_REJECTS = 55
ABSOLUTE_URL = re.compile(r"""(?i)\b(?:https?:)?//[a-z0-9.\-\[\]:]+""")


@dataclass
class QualityWorld:
    """What the builder inserted, for the tests to look for."""

    owner_url: str
    data_docs: Path
    failing_check: tuple[str, str] = ("curated/fact_flight", "flight_seat_capacity_valid")
    named_rejects: list[dict] = field(default_factory=list)
    bulk_rejects: list[dict] = field(default_factory=list)
    audits: list[dict] = field(default_factory=list)
    evaluations: list[dict] = field(default_factory=list)


def build_quality_world(owner_url: str, quality_dir: Path) -> QualityWorld:
    """A warehouse with a real validation (and its Data Docs) plus some days of quality history
    inserted directly. Also used by the browser test."""
    from latam_dagster.quality.gx_resource import GreatExpectationsResource
    from latam_dagster.tables import REGISTRY
    from latam_dagster.transform.airports import load_dim_airport

    load_dim_airport(owner_url)
    docs = quality_dir / "data_docs"
    gx = GreatExpectationsResource(
        warehouse_url=owner_url, quality_dir=str(quality_dir), data_docs_dir=str(docs)
    )
    gx.validate(REGISTRY.suite("curated.dim_airport"), run_id="qs-real-validation")
    world = QualityWorld(owner_url, docs)
    now = datetime.now(UTC)
    with connection(owner_url) as conn, conn.cursor() as cur:
        _insert_evaluations(cur, world, now)
        _insert_rejects(cur, world, now)
        _insert_audits(cur, world, now)
    return world


def _insert_evaluations(cur, world: QualityWorld, now: datetime) -> None:
    """fact_flight validated on each of the last three days; seat capacity failed yesterday."""
    checks = [
        ("flight_keys_unique", "ERROR", True),
        ("flight_seat_capacity_valid", "ERROR", True),
        ("flight_route_plausible", "WARN", False),
    ]
    for days_ago in (3, 2, 1):
        at = now - timedelta(days=days_ago)
        validation = uuid.uuid4()
        failed = [name for name, _, _ in checks if name == world.failing_check[1] and days_ago == 1]
        cur.execute(
            """INSERT INTO quality.validation (validation_id, suite_name, asset_key, run_id,
                   evaluated_at, success, checks_evaluated, checks_failed, duration_ms)
               VALUES (%s, 'curated.fact_flight', 'curated/fact_flight', %s, %s, %s, 3, %s, 420)""",
            (str(validation), f"qs-run-{days_ago}", at, not failed, len(failed)),
        )
        for name, severity, blocking in checks:
            success = name not in failed
            unexpected = 0 if success else 7
            cur.execute(
                """INSERT INTO quality.check_evaluation (validation_id, check_name, asset_key,
                       table_name, run_id, evaluated_at, success, severity, blocking, description,
                       expectations_evaluated, expectations_failed, unexpected_count, statistics)
                   VALUES (%s, %s, 'curated/fact_flight', 'curated.fact_flight', %s, %s, %s, %s,
                           %s, 'inserted by the quality site tests', 1, %s, %s, '{}'::jsonb)""",
                (str(validation), name, f"qs-run-{days_ago}", at, success, severity, blocking,
                 0 if success else 1, unexpected),
            )  # fmt: skip
            world.evaluations.append(
                {
                    "check_name": name,
                    "evaluated_at": at,
                    "success": success,
                    "unexpected": unexpected,
                }
            )


def _insert_rejects(cur, world: QualityWorld, now: datetime) -> None:
    named = [
        ("curated.fact_flight", "QS800-2026-11-27-SCL", "flight_airports_known", {"origin": "QQX"}),
        ("curated.fact_flight", "QS801-2026-11-27-LIM", "flight_airports_known", {"origin": "QQY"}),
        ("curated.fact_flight", "QS802-2026-11-28-GRU", "flight_seat_capacity_valid",
         {"seat_capacity": -5}),
        ("curated.flight_passenger_load", "QS803-2026-11-28-BOG", "load_factor_in_range",
         {"load_factor": 1.7}),
    ]  # fmt: skip
    for i, (table, key, rule, observed) in enumerate(named):
        row = {
            "table_name": table,
            "row_key": key,
            "rule": rule,
            "flight_date": datetime.strptime(key.split("-", 1)[1][:10], "%Y-%m-%d").date(),
            "observed": observed,
            "run_id": f"qs-audit-{i}",
            "first_seen": now - timedelta(hours=5),
            "last_seen": now - timedelta(minutes=i + 1),
        }
        world.named_rejects.append(row)
    for i in range(BULK_REJECTS):
        world.bulk_rejects.append(
            {
                "table_name": "curated.aircraft_position_latest",
                "row_key": f"CC-Q{i:03d}",
                "rule": "position_coordinates_in_range",
                "flight_date": None,
                "observed": {"latitude": 91 + i},
                "run_id": "qs-audit-bulk",
                "first_seen": now - timedelta(days=2),
                # older than every named row; the newest first
                "last_seen": now - timedelta(hours=1, minutes=i),
            }
        )
    for row in world.named_rejects + world.bulk_rejects:
        cur.execute(
            """INSERT INTO quality.rejects (table_name, row_key, rule, flight_date, observed,
                   run_id, first_seen, last_seen)
               VALUES (%(table_name)s, %(row_key)s, %(rule)s, %(flight_date)s, %(observed)s,
                       %(run_id)s, %(first_seen)s, %(last_seen)s)""",
            {**row, "observed": psycopg2.extras.Json(row["observed"])},
        )


def _insert_audits(cur, world: QualityWorld, now: datetime) -> None:
    """Two audited tables over five days; one fact_flight audit blocked."""
    for days_ago in range(5):
        at = now - timedelta(days=days_ago, minutes=10)
        for table, audited, held, blocked in (
            ("curated.fact_flight", 1000, 3 + days_ago, days_ago == 2),
            ("curated.flight_passenger_load", 400, days_ago % 2, False),
        ):
            world.audits.append(
                {"table_name": table, "audited_at": at, "audited_rows": audited,
                 "held_rows": held, "blocked": blocked}
            )  # fmt: skip
            cur.execute(
                """INSERT INTO quality.audit_batch (table_name, run_id, audited_at, audited_rows,
                       published_rows, held_rows, reject_pct, blocked, reason)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)""",
                (table, f"qs-audit-{days_ago}", at, audited, 0 if blocked else audited - held,
                 held, 100.0 * held / audited, blocked,
                 "flight_keys_unique failed" if blocked else None),
            )  # fmt: skip


@pytest.fixture(scope="module")
def world(template_db: str, tmp_path_factory) -> Iterator[QualityWorld]:
    name = f"latam_qs_{RUN_ID}_{uuid.uuid4().hex[:6]}"
    _admin_exec(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
    try:
        yield build_quality_world(_db_url(name), tmp_path_factory.mktemp("quality_site"))
    finally:
        drop_database(name)


@pytest.fixture(scope="module")
def app(world: QualityWorld):
    config = get_api_config(
        database_url=role_url(world.owner_url, READ_ONLY_ROLE),
        cursor_secret="quality-site-cursor",
        key_cache_seconds=0.0,
        data_docs_dir=str(world.data_docs),
        session_secret=SESSION_SECRET,
        testing=True,
    )
    app = create_app(config)
    yield app
    app.extensions["latam_api"].db.close()


@pytest.fixture(scope="module")
def reader_key(world: QualityWorld) -> str:
    return new_api_key(world.owner_url, ["quality:read"])


@pytest.fixture
def browser(app):
    """A fresh cookie jar: a person who has not signed in yet."""
    return app.test_client()


@pytest.fixture
def signed_in(browser, reader_key):
    response = browser.post("/quality/login", data={"api_key": reader_key})
    assert response.status_code == 303
    return browser


def _cookie_header(response) -> str:
    (header,) = [h for h in response.headers.getlist("Set-Cookie") if h.startswith(COOKIE_NAME)]
    return header


def _text(response) -> str:
    return response.get_data(as_text=True)


# --- sign-in --------------------------------------------------------------------------------


def test_a_browser_without_a_session_is_sent_to_the_sign_in_form(browser):
    response = browser.get("/quality/trends?days=7", headers=HTML)
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert location.path == "/quality/login"
    assert parse_qs(location.query) == {"next": ["/quality/trends?days=7"]}
    form = browser.get(response.headers["Location"], headers=HTML)
    assert form.status_code == 200 and 'name="api_key"' in _text(form)
    assert 'value="/quality/trends?days=7"' in _text(form)


def test_an_api_client_without_credentials_gets_the_usual_401(browser):
    for url in ("/quality/", "/quality/trends", "/quality/docs/"):
        response = browser.get(url)
        assert (response.status_code, response.content_type) == (401, PROBLEM), url
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_good_key_opens_a_session_with_safe_cookie_flags(browser, reader_key):
    response = browser.post(
        "/quality/login", data={"api_key": f"  {reader_key}\n", "next": "/quality/trends"}
    )
    assert response.status_code == 303 and response.headers["Location"] == "/quality/trends"
    cookie = _cookie_header(response)
    flags = {part.strip().split("=", 1)[0].lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "path", "samesite", "expires"} <= flags
    assert "secure" not in flags  # plain HTTP (a local demo): a Secure cookie would never return
    assert "SameSite=Lax" in cookie and "Path=/quality" in cookie
    expires = datetime.strptime(
        cookie.split("Expires=")[1].split(";")[0], "%a, %d %b %Y %H:%M:%S GMT"
    )
    remaining = expires.replace(tzinfo=UTC) - datetime.now(UTC)
    assert LIFETIME - timedelta(minutes=5) < remaining <= LIFETIME
    assert reader_key not in cookie and reader_key[len("latam_") :] not in cookie
    page = browser.get("/quality/trends", headers=HTML)
    assert page.status_code == 200 and "Data quality over time" in _text(page)


def test_over_https_the_cookie_is_secure(app, reader_key):
    client = app.test_client()
    response = client.post(
        "/quality/login", data={"api_key": reader_key}, base_url="https://quality.example"
    )
    assert response.status_code == 303
    assert "; Secure" in _cookie_header(response)


def test_a_bad_key_gives_the_form_again_with_an_error_and_401(browser):
    response = browser.post("/quality/login", data={"api_key": "latam_not-a-real-key"})
    assert response.status_code == 401 and response.mimetype == "text/html"
    text = _text(response)
    assert 'role="alert"' in text and "not valid" in text and 'name="api_key"' in text
    assert "latam_not-a-real-key" not in text  # the key is never echoed
    assert not [h for h in response.headers.getlist("Set-Cookie") if h.startswith(COOKIE_NAME)]
    assert browser.get("/quality/", headers=HTML).status_code == 302
    assert browser.post("/quality/login", data={}).status_code == 401


def test_a_key_without_the_quality_scope_cannot_sign_in(browser, world):
    key = new_api_key(world.owner_url, [s for s in SCOPES if s != "quality:read"])
    response = browser.post("/quality/login", data={"api_key": key})
    assert response.status_code == 403
    assert "lacks the quality:read scope" in _text(response)
    assert not [h for h in response.headers.getlist("Set-Cookie") if h.startswith(COOKIE_NAME)]
    assert browser.get("/quality/", headers=HTML).status_code == 302


def test_a_revoked_key_cannot_sign_in(browser, world):
    name = f"qs-revoked-{uuid.uuid4().hex[:6]}"
    key = new_api_key(world.owner_url, ["quality:read"], name=name)
    with connection(world.owner_url) as conn:
        assert revoke_key(conn, name) == 1
    assert browser.post("/quality/login", data={"api_key": key}).status_code == 401


def test_revoking_the_key_ends_its_browser_sessions(browser, world):
    """A session lasts only as long as its key: the next page after the revocation asks to sign
    in again and deletes the cookie, and a new key given the same name does not revive it."""
    name = f"qs-session-{uuid.uuid4().hex[:6]}"
    key = new_api_key(world.owner_url, ["quality:read"], name=name)
    assert browser.post("/quality/login", data={"api_key": key}).status_code == 303
    assert browser.get("/quality/", headers=HTML).status_code == 200
    with connection(world.owner_url) as conn:
        assert revoke_key(conn, name) == 1
    response = browser.get("/quality/", headers=HTML)
    assert response.status_code == 302 and "/quality/login" in response.headers["Location"]
    cookie = _cookie_header(response)
    assert "Max-Age=0" in cookie or "Expires=Thu, 01 Jan 1970" in cookie
    assert browser.get("/quality/trends", headers=HTML).status_code == 302
    # the same browser signs in again with a new key of that name; a copy of the old cookie
    # (kept by someone else) stays refused
    old = browser.get_cookie(COOKIE_NAME, path="/quality")
    assert old is None  # deleted above
    new_key = new_api_key(world.owner_url, ["quality:read"], name=name)
    assert browser.post("/quality/login", data={"api_key": new_key}).status_code == 303
    assert browser.get("/quality/", headers=HTML).status_code == 200


def test_a_session_of_a_revoked_key_stays_refused_after_the_name_is_reused(app, world):
    name = f"qs-reuse-{uuid.uuid4().hex[:6]}"
    first, other = app.test_client(), app.test_client()
    key = new_api_key(world.owner_url, ["quality:read"], name=name)
    assert first.post("/quality/login", data={"api_key": key}).status_code == 303
    stolen = first.get_cookie(COOKIE_NAME, path="/quality").value
    with connection(world.owner_url) as conn:
        assert revoke_key(conn, name) == 1
    new_api_key(world.owner_url, ["quality:read"], name=name)  # the name is active again
    other.set_cookie(COOKIE_NAME, stolen, path="/quality")
    assert other.get("/quality/", headers=HTML).status_code == 302


def test_sign_out_clears_the_session(signed_in):
    assert signed_in.get("/quality/", headers=HTML).status_code == 200
    response = signed_in.post("/quality/logout")
    assert response.status_code == 303 and response.headers["Location"].startswith("/quality/login")
    cookie = _cookie_header(response)
    assert "Max-Age=0" in cookie or "Expires=Thu, 01 Jan 1970" in cookie
    assert signed_in.get("/quality/", headers=HTML).status_code == 302
    assert "You are signed out" in _text(signed_in.get(response.headers["Location"]))


def test_every_page_offers_sign_out(signed_in):
    for url in ("/quality/", "/quality/trends"):
        text = _text(signed_in.get(url))
        assert 'action="/quality/logout"' in text and "Sign out" in text


def test_sign_in_and_out_from_another_site_are_refused(app, reader_key, signed_in):
    evil = {"Origin": "https://evil.example"}
    stranger = app.test_client()
    response = stranger.post("/quality/login", data={"api_key": reader_key}, headers=evil)
    assert response.status_code == 403
    assert not [h for h in response.headers.getlist("Set-Cookie") if h.startswith(COOKIE_NAME)]
    assert signed_in.post("/quality/logout", headers=evil).status_code == 403
    assert signed_in.get("/quality/", headers=HTML).status_code == 200
    same = {"Origin": "http://localhost"}
    assert (
        stranger.post("/quality/login", data={"api_key": reader_key}, headers=same).status_code
        == 303
    )


@pytest.mark.parametrize(
    "target",
    ["https://evil.example/quality/", "//evil.example/quality/", "/\\evil.example", "/api/v1/flights",
     "javascript:alert(1)", "/quality"],
)  # fmt: skip
def test_after_sign_in_the_browser_stays_on_the_report(browser, reader_key, target):
    response = browser.post("/quality/login", data={"api_key": reader_key, "next": target})
    assert response.status_code == 303 and response.headers["Location"] == "/quality/"


def _key_id(owner_url: str, name: str) -> int:
    with connection(owner_url) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT key_id FROM api.api_keys WHERE name = %s AND revoked_at IS NULL", (name,)
        )
        return cur.fetchone()[0]


def test_a_session_ends_after_its_lifetime(app, browser, world, monkeypatch):
    name = f"qs-life-{uuid.uuid4().hex[:6]}"
    new_api_key(world.owner_url, ["quality:read"], name=name)
    content = {
        "_permanent": True,
        "quality_reader": name,
        "quality_key_id": _key_id(world.owner_url, name),
    }
    serializer = app.session_interface.get_signing_serializer(app)
    real = time.time()
    monkeypatch.setattr(
        itsdangerous.timed.time, "time", lambda: real - LIFETIME.total_seconds() - 60
    )
    stale = serializer.dumps(content)
    monkeypatch.undo()
    fresh = serializer.dumps(content)
    browser.set_cookie(COOKIE_NAME, stale, path="/quality")
    assert browser.get("/quality/", headers=HTML).status_code == 302
    browser.set_cookie(COOKIE_NAME, fresh, path="/quality")
    assert browser.get("/quality/", headers=HTML).status_code == 200
    # a session that names its reader but no key (as signed before sessions carried the key's
    # id) is refused too
    browser.set_cookie(
        COOKIE_NAME, serializer.dumps({"_permanent": True, "quality_reader": name}), path="/quality"
    )
    assert browser.get("/quality/", headers=HTML).status_code == 302


def test_a_cookie_not_signed_with_our_secret_is_ignored(browser):
    from flask import Flask

    other = Flask("other")
    other.secret_key = "someone-else"
    forged = other.session_interface.get_signing_serializer(other).dumps(
        {"_permanent": True, "quality_reader": "intruder"}
    )
    browser.set_cookie(COOKIE_NAME, forged, path="/quality")
    assert browser.get("/quality/", headers=HTML).status_code == 302
    assert browser.get("/quality/").status_code == 401


def test_the_bearer_key_still_works_and_a_wrong_one_is_never_overridden(signed_in, reader_key):
    client = signed_in.application.test_client()
    bearer = {"Authorization": f"Bearer {reader_key}"}
    assert client.get("/quality/", headers=bearer).status_code == 200
    assert client.get("/quality/docs/", headers=bearer).status_code == 200
    wrong = signed_in.get("/quality/", headers={"Authorization": "Bearer latam_wrong"})
    assert (wrong.status_code, wrong.content_type) == (401, PROBLEM)


def test_the_data_api_never_reads_the_session(signed_in):
    response = signed_in.get("/api/v1/quality")
    assert (response.status_code, response.content_type) == (401, PROBLEM)


# --- the report -----------------------------------------------------------------------------


def _table(text: str, table_id: str) -> list[list[str]]:
    """Cell texts of each body row of the table with that id."""
    match = re.search(rf'<table[^>]*id="{table_id}".*?<tbody>(.*?)</tbody>', text, re.S)
    assert match, f"no table {table_id}"
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", match.group(1), re.S)
    return [
        [
            html.unescape(re.sub(r"<[^>]+>", "", cell)).strip()
            for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        ]
        for row in rows
    ]


def test_report_lists_the_latest_result_of_every_check_failures_first(signed_in, world):
    response = signed_in.get("/quality/")
    assert response.status_code == 200 and response.mimetype == "text/html"
    rows = _table(_text(response), "checks-table")
    assert rows[0][:3] == ["FAIL", *world.failing_check]
    assert rows[0][4] == "7"
    assert all(r[0] == "PASS" for r in rows[1:])
    checks = {(r[1], r[2]) for r in rows}
    assert {
        ("curated/fact_flight", "flight_keys_unique"),
        ("curated/fact_flight", "flight_route_plausible"),
    } <= checks
    assert any(asset == "curated/dim_airport" for asset, _ in checks)  # the real validation
    yesterday = max(e["evaluated_at"] for e in world.evaluations)
    assert rows[0][5] == yesterday.strftime("%Y-%m-%d %H:%M UTC")


def test_report_counts_held_back_rows_per_table_and_rule(signed_in, world):
    rows = _table(_text(signed_in.get("/quality/")), "reject-counts-table")
    counts = {(r[0], r[1]): int(r[2].replace(",", "")) for r in rows}
    assert counts == {
        ("curated.aircraft_position_latest", "position_coordinates_in_range"): BULK_REJECTS,
        ("curated.fact_flight", "flight_airports_known"): 2,
        ("curated.fact_flight", "flight_seat_capacity_valid"): 1,
        ("curated.flight_passenger_load", "load_factor_in_range"): 1,
    }


def test_report_lists_the_newest_50_held_back_rows(signed_in, world):
    text = _text(signed_in.get("/quality/"))
    rows = _table(text, "rejects-table")
    assert len(rows) == 50
    newest = sorted(
        world.named_rejects + world.bulk_rejects, key=lambda r: r["last_seen"], reverse=True
    )
    assert [r[1] for r in rows] == [r["row_key"] for r in newest[:50]]
    first = rows[0]
    named = world.named_rejects[0]
    assert first[:4] == [
        named["table_name"],
        named["row_key"],
        named["rule"],
        str(named["flight_date"]),
    ]
    assert json.loads(first[4]) == named["observed"]
    assert first[5] == named["run_id"]
    for old in newest[50:]:
        assert old["row_key"] not in text
    assert 'href="/quality/docs/"' in text


# --- trends ---------------------------------------------------------------------------------


def _label(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%b %d")


def test_trends_chart_check_results_per_day(signed_in, world):
    text = _text(signed_in.get("/quality/trends"))
    svg = re.search(r'<svg class="chart" id="checks-per-day".*?</svg>', text, re.S).group(0)
    assert "Check results per day" in svg and "Day (UTC)" in svg and "Check evaluations" in svg
    assert 'class="legend"' in svg and ">passed</text>" in svg and ">failed</text>" in svg
    yesterday = _label(max(e["evaluated_at"] for e in world.evaluations))
    assert f"<title>{yesterday}: failed 1</title>" in svg
    assert f"<title>{yesterday}: passed 2</title>" in svg
    bars = re.findall(r'<rect class="bar"[^>]*height="([\d.]+)"', svg)
    assert bars and all(float(h) > 0 for h in bars)
    assert "failed check evaluations in this period" in text


def test_trends_chart_held_back_rows_per_table(signed_in, world):
    text = _text(signed_in.get("/quality/trends"))
    held = re.search(r'<svg class="chart" id="held-rows-per-day".*?</svg>', text, re.S).group(0)
    share = re.search(r'<svg class="chart" id="held-share-per-day".*?</svg>', text, re.S).group(0)
    for svg in (held, share):
        assert (
            ">curated.fact_flight</text>" in svg and ">curated.flight_passenger_load</text>" in svg
        )
        assert len(re.findall(r'<path class="line" d="M[\d.]+ [\d.]+( L[\d.]+ [\d.]+)+"', svg)) == 2
    assert "Rows held back" in held and "Held back (% of audited rows)" in share
    for audit in world.audits:
        day = _label(audit["audited_at"])
        assert f"<title>{day}: {audit['table_name']} {audit['held_rows']}</title>" in held
        pct = f"{100 * audit['held_rows'] / audit['audited_rows']:.2f}".rstrip("0").rstrip(".")
        assert f"<title>{day}: {audit['table_name']} {pct}%</title>" in share
    totals = {r[0]: r for r in _table(text, "audit-totals-table")}
    flights = totals["curated.fact_flight"]
    assert flights[1:4] == ["5", "5,000", str(sum(3 + d for d in range(5)))]
    assert flights[5] == "1"


def test_trends_period(signed_in):
    assert "Last 7 days" in _text(signed_in.get("/quality/trends?days=7"))
    for bad in ("0", "abc", "9999", "-1"):
        response = signed_in.get(f"/quality/trends?days={bad}")
        assert (response.status_code, response.content_type) == (400, PROBLEM), bad


# --- nothing from another host --------------------------------------------------------------


def _data_docs_pages(world: QualityWorld) -> list[str]:
    pages = sorted(
        p.relative_to(world.data_docs).as_posix() for p in world.data_docs.rglob("*.html")
    )
    assert "index.html" in pages and any(p.startswith("validations/") for p in pages)
    return pages


def _external(text: str) -> list[str]:
    return [
        u
        for u in ABSOLUTE_URL.findall(text)
        if not re.match(r"(?i)(https?:)?//(localhost|127\.0\.0\.1)\b", u)
    ]


def test_no_served_html_names_another_host(signed_in, browser, world):
    urls = ["/quality/", "/quality/trends", "/quality/trends?days=90", "/quality/docs/"]
    urls += [f"/quality/docs/{p}" for p in _data_docs_pages(world)]
    for url in urls:
        response = signed_in.get(url)
        assert response.status_code == 200 and response.mimetype == "text/html", url
        assert _external(_text(response)) == [], url
    for response in (
        browser.get("/quality/login"),
        browser.post("/quality/login", data={"api_key": "x"}),
    ):
        assert _external(_text(response)) == []
    for css in world.data_docs.rglob("*.css"):
        response = signed_in.get(f"/quality/docs/{css.relative_to(world.data_docs).as_posix()}")
        assert response.status_code == 200 and "great-expectations-web-assets" not in _text(
            response
        )


def test_data_docs_load_their_libraries_from_the_api(signed_in, world):
    """Every script and stylesheet a Data Docs page names is answered by the API itself."""
    for page in _data_docs_pages(world):
        text = _text(signed_in.get(f"/quality/docs/{page}"))
        refs = re.findall(r'<script[^>]*\ssrc="([^"]+)"', text)
        refs += re.findall(r'<link rel="stylesheet"[^>]*\shref="([^"]+)"', text)
        assert "/quality/assets/bootstrap/css/bootstrap.min.css" in refs, page
        assert "/quality/assets/jquery/jquery.min.js" in refs, page
        assert "/quality/assets/font-awesome/css/all.min.css" in refs, page
        assert "integrity=" not in text
        base = f"/quality/docs/{page}"
        for ref in refs:
            url = urlsplit(ref).path if ref.startswith("/") else _join(base, ref)
            response = signed_in.get(url)
            assert response.status_code == 200, (page, ref)
            response.close()
    index = _text(signed_in.get("/quality/docs/"))
    assert "/quality/assets/site/datadocs-table.js" in index and ".bootstrapTable(" in index
    assert 'src="/quality/docs/static/images/logo-long.png"' in index


def _join(base: str, ref: str) -> str:
    from posixpath import dirname, normpath

    return normpath(f"{dirname(base)}/{urlsplit(ref).path}")


def test_assets_are_public_but_only_from_known_libraries(browser):
    css = browser.get("/quality/assets/site/quality.css")
    assert css.status_code == 200 and css.mimetype == "text/css"
    assert (
        browser.get("/quality/assets/font-awesome/webfonts/fa-solid-900.woff2").status_code == 200
    )
    assert browser.get("/quality/assets/nope/x.js").status_code == 404
    assert browser.get("/quality/assets/site/../config.py").status_code == 404
    assert browser.get("/quality/assets/site/%2e%2e/config.py").status_code == 404


def test_pages_forbid_scripts_and_other_hosts(signed_in):
    page = signed_in.get("/quality/")
    csp = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp
    assert page.headers["X-Frame-Options"] == "DENY"
    docs = signed_in.get("/quality/docs/")
    assert "default-src 'self'" in docs.headers["Content-Security-Policy"]
    login = signed_in.get("/quality/login")
    assert "default-src 'none'" in login.headers["Content-Security-Policy"]


# --- the rewriting itself -------------------------------------------------------------------


def test_cdn_urls_map_to_local_files():
    assert local_asset("https://code.jquery.com/jquery-3.7.1.min.js") == ("jquery", "jquery.min.js")
    assert local_asset("https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css") == (
        "bootstrap", "css/bootstrap.min.css")  # fmt: skip
    assert local_asset("https://cdn.jsdelivr.net/npm/bootstrap@4.6.2/dist/js/bootstrap.bundle.min.js") == (
        "bootstrap", "js/bootstrap.bundle.min.js")  # fmt: skip
    assert local_asset("https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js") == (
        "site", "datadocs-table.js")  # fmt: skip
    assert local_asset("https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css") == (
        "font-awesome", "css/all.min.css")  # fmt: skip
    for dropped in (
        "https://cdn.jsdelivr.net/npm/vega@5",
        "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js",
        "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.js",
        "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js",
        "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css",
    ):
        assert local_asset(dropped) is None, dropped


def test_rewriter_drops_or_localises_every_external_reference():
    page = """<html><head>
<link rel="stylesheet" href="https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css"/>
<link rel="stylesheet" href="//cdn.example.org/theme.css">
<script src="https://cdn.jsdelivr.net/npm/vega@5"></script>
<script src='https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js' integrity="sha384-x" crossorigin="anonymous"></script>
<style>.brand { background: url('https://great-expectations-web-assets.s3.amazonaws.com/full_logo_dark.png') } .x { background: url(http://tracker.example/p.gif) }</style>
</head><body>
<img src="https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/logo-long.png?d=1" alt="GX">
<a href="https://greatexpectations.io">Great Expectations</a> <a href="expectations/a.html">suite</a>
<svg xmlns="http://www.w3.org/2000/svg"><path d="M0 0"/></svg>
<script>var docs = "see https://example.org/page"; // a comment, kept</script>
</body></html>"""
    out = Rewriter(lambda lib, f: f"/quality/assets/{lib}/{f}", "/logo.png").html(page)
    assert _external(out) == []
    assert '<link rel="stylesheet" href="/quality/assets/bootstrap/css/bootstrap.min.css"/>' in out
    assert 'src="/quality/assets/bootstrap/js/bootstrap.bundle.min.js"' in out
    assert "integrity" not in out and "crossorigin" not in out and "vega" not in out
    assert "theme.css" not in out
    assert out.count("<script") == out.count("</script>") == 2
    assert 'url("/logo.png")' in out and "background: none" in out
    assert '<img src="/logo.png" alt="GX">' in out
    assert "<a>Great Expectations</a>" in out and '<a href="expectations/a.html">suite</a>' in out
    assert "// a comment, kept" in out and "<svg><path" in out
