"""The quality report as a person sees it: headless Chromium (Debian's chromium + chromedriver,
driven by selenium) signs in through the form, reads the report, the trend charts and the Data
Docs pages, and every request the browser makes is checked to go to the API itself.

The API runs on a free loopback port against a warehouse of its own: a real GX validation built
its Data Docs, and some days of check history, held-back rows and audits were inserted directly
(`tests.integration.test_quality_site.build_quality_world`). Requests are read from Chrome's
DevTools performance log; any URL whose host is not 127.0.0.1 or localhost fails the test, so a
page that still pointed at a CDN would be caught even though there is no network to reach it.
Screenshots go to reports/quality/.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.e2e.browser import (
    NetworkLog,
    foreign_urls,
    headless_chrome,
    requested_urls,
    style,
    until,
)
from tests.integration.observability_support import free_port
from tests.integration.test_quality_site import QualityWorld, build_quality_world

pytestmark = [pytest.mark.integration, pytest.mark.e2e]
ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "reports" / "quality"


@dataclass
class Site:
    base: str
    key: str
    world: QualityWorld


@pytest.fixture(scope="module")
def site(template_db: str, tmp_path_factory) -> Iterator[Site]:
    from werkzeug.serving import make_server

    from tests.integration.api_fixtures import (
        ApiWarehouse,
        new_api_key,
        own_database,
        reader_config,
        running_app,
    )

    with own_database("latam_qr", template_db) as url:
        world = build_quality_world(url, tmp_path_factory.mktemp("quality_report"))
        config = reader_config(
            ApiWarehouse(url, world.data_docs),
            cursor_secret="quality-report-browser",
            session_secret=uuid.uuid4().hex,
        )
        with running_app(config) as app:
            port = free_port()
            server = make_server("127.0.0.1", port, app, threaded=True)
            threading.Thread(target=server.serve_forever, daemon=True).start()
            try:
                yield Site(f"http://127.0.0.1:{port}", new_api_key(url, ["quality:read"]), world)
            finally:
                server.shutdown()


@pytest.fixture(scope="module")
def chrome():
    driver = headless_chrome(logs=("performance",))
    SHOTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


@pytest.fixture
def network(chrome) -> Iterator[NetworkLog]:
    """After each test, every request the browser made must have stayed on the API's host."""
    log = NetworkLog()
    log.read(chrome)  # what earlier tests left in the log was checked by them
    yield log
    log.assert_only_local(chrome)


@pytest.fixture
def browser(chrome, network):
    return chrome


def _shot(driver, name: str) -> Path:
    """A screenshot of the whole page (not only the window), once its fonts are in."""
    import base64

    driver.execute_script("return document.fonts.ready")
    width, height = driver.execute_script(
        "const e = document.documentElement; return [e.scrollWidth, e.scrollHeight];"
    )
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot",
        {"format": "png", "captureBeyondViewport": True,
         "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}},
    )  # fmt: skip
    path = SHOTS / f"{name}.png"
    path.write_bytes(base64.b64decode(shot["data"]))
    assert path.stat().st_size > 10_000
    return path


def _sign_in(driver, key: str) -> None:
    from selenium.webdriver.common.by import By

    field_ = driver.find_element(By.ID, "api_key")
    field_.clear()
    field_.send_keys(key)
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()


@pytest.fixture
def signed_in(browser, site: Site):
    browser.get(f"{site.base}/quality/")
    if urlsplit(browser.current_url).path == "/quality/login":
        _sign_in(browser, site.key)
    until(browser, lambda d: urlsplit(d.current_url).path == "/quality/", "back on the report")
    return browser


def test_the_network_check_catches_another_host():
    """The check the other tests rely on, fed a log that names a CDN."""
    entries = [
        {"message": json.dumps({"message": {"method": "Network.requestWillBeSent",
                                            "params": {"request": {"url": url}}}})}
        for url in ("http://127.0.0.1:8080/quality/", "data:image/svg+xml;base64,AA==",
                    "https://cdn.jsdelivr.net/npm/vega@5", "http://localhost:1/x.css")
    ]  # fmt: skip
    assert foreign_urls(requested_urls(entries)) == ["https://cdn.jsdelivr.net/npm/vega@5"]


def test_sign_in_through_the_form(browser, site: Site):
    from selenium.webdriver.common.by import By

    browser.delete_all_cookies()
    browser.get(f"{site.base}/quality/trends")
    until(browser, lambda d: urlsplit(d.current_url).path == "/quality/login", "the sign-in form")
    assert style(browser, ".login", "background-color") == "rgb(255, 255, 255)"
    _shot(browser, "quality-login")

    _sign_in(browser, "latam_this-is-not-a-key")
    error = until(browser, lambda d: d.find_elements(By.ID, "login-error"), "an error")[0]
    assert "not valid" in error.text and error.is_displayed()
    assert style(browser, "#login-error", "color") == "rgb(197, 48, 48)"
    assert not browser.get_cookies()
    _shot(browser, "quality-login-error")

    _sign_in(browser, site.key)
    until(browser, lambda d: urlsplit(d.current_url).path == "/quality/trends", "the trends page")
    (cookie,) = [c for c in browser.get_cookies() if c["name"] == "latam_quality_session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and cookie["path"] == "/quality"
    assert site.key not in cookie["value"]
    assert browser.execute_script("return document.cookie") == ""  # HttpOnly: no script sees it


def test_report_tables_are_shown_styled(signed_in, site: Site):
    from selenium.webdriver.common.by import By

    browser = signed_in
    rows = browser.find_elements(By.CSS_SELECTOR, "#checks-table tbody tr")
    assert len(rows) >= 4 and all(r.is_displayed() for r in rows)
    first = rows[0].find_elements(By.TAG_NAME, "td")
    assert [c.text for c in first[:3]] == ["FAIL", *site.world.failing_check]
    assert "fail" in rows[0].get_attribute("class")
    held = browser.find_elements(By.CSS_SELECTOR, "#reject-counts-table tbody tr")
    assert len(held) == 4
    rejects = browser.find_elements(By.CSS_SELECTOR, "#rejects-table tbody tr")
    assert len(rejects) == 50
    assert site.world.named_rejects[0]["row_key"] in rejects[0].text
    # the API's stylesheet applies: brand bar, fonts, failure rows, badges
    assert style(browser, ".topbar", "background-color") == "rgb(11, 31, 58)"
    assert style(browser, "body", "font-family").startswith('"Source Sans Pro"')
    assert style(browser, "#checks-table tr.fail td", "background-color") == "rgb(253, 236, 236)"
    assert style(browser, "#checks-table .badge.fail", "background-color") == "rgb(197, 48, 48)"
    height = browser.execute_script(
        "return document.querySelector('#checks-table').getBoundingClientRect().height"
    )
    assert height > 100
    _shot(browser, "quality-report")


def test_trend_charts_are_drawn(signed_in, site: Site):
    from selenium.webdriver.common.by import By

    browser = signed_in
    browser.find_element(By.LINK_TEXT, "Trends").click()
    until(browser, lambda d: urlsplit(d.current_url).path == "/quality/trends", "the trends page")
    charts = browser.find_elements(By.CSS_SELECTOR, "svg.chart")
    assert [c.get_attribute("id") for c in charts] == [
        "checks-per-day", "held-rows-per-day", "held-share-per-day",
    ]  # fmt: skip
    sizes = browser.execute_script(
        """
        const box = e => { const r = e.getBoundingClientRect(); return [r.width, r.height]; };
        return {
          charts: [...document.querySelectorAll('svg.chart')].map(box),
          bars: [...document.querySelectorAll('#checks-per-day rect.bar')].map(box),
          lines: [...document.querySelectorAll('svg.chart path.line')].map(
            p => [p.getTotalLength(), ...box(p)]),
          legend: [...document.querySelectorAll('svg.chart .legend-label')].map(t => t.textContent),
          titles: [...document.querySelectorAll('svg.chart .chart-title')].map(t => t.textContent),
          axes: [...document.querySelectorAll('svg.chart .axis-label')].map(t => t.textContent),
        };
        """
    )
    assert all(w > 300 and h > 150 for w, h in sizes["charts"])
    assert sizes["bars"] and all(w > 0 and h > 0 for w, h in sizes["bars"])
    assert len(sizes["lines"]) == 4 and all(length > 0 for length, _, _ in sizes["lines"])
    assert {"passed", "failed", "curated.fact_flight", "curated.flight_passenger_load"} <= set(
        sizes["legend"]
    )
    assert "Check results per day" in sizes["titles"] and "Day (UTC)" in sizes["axes"]
    # presentation colours drawn as given: failures red
    fills = {b.get_attribute("fill") for b in browser.find_elements(By.CSS_SELECTOR, "rect.bar")}
    assert {"#2f855a", "#c53030"} <= fills
    assert style(browser, "svg.chart .chart-title", "font-weight") == "700"
    totals = browser.find_elements(By.CSS_SELECTOR, "#audit-totals-table tbody tr")
    assert [r.find_element(By.TAG_NAME, "td").text for r in totals] == [
        "curated.fact_flight", "curated.flight_passenger_load",
    ]  # fmt: skip
    _shot(browser, "quality-trends")


def test_data_docs_render_their_tables_from_local_assets(signed_in, network, site: Site):
    from selenium.webdriver.common.by import By

    browser = signed_in
    browser.find_element(By.LINK_TEXT, "Data Docs").click()
    until(browser, lambda d: urlsplit(d.current_url).path == "/quality/docs/", "the Data Docs")
    rows = until(
        browser,
        lambda d: d.find_elements(
            By.CSS_SELECTOR, "table.ge-index-page-validation-results-table tbody tr.clickable-row"
        ),
        "validation rows in the index table",
    )
    assert rows[0].is_displayed() and "curated.dim_airport" in rows[0].text
    # Bootstrap's table styles (from the XStatic package, not a CDN) apply to the rows
    cell = "table.ge-index-page-validation-results-table tbody td"
    assert style(browser, cell, "border-top-color") == "rgb(222, 226, 230)"
    assert style(browser, cell, "border-top-width") == "1px"
    assert style(browser, ".navbar", "display") == "flex"
    fonts = browser.execute_async_script(
        "const done = arguments[0];"
        "document.fonts.ready.then(() => done(document.fonts.check('900 16px \"Font Awesome 6 Free\"')));"
    )
    assert fonts, "Font Awesome's web font did not load"
    assert (
        browser.execute_script("return typeof jQuery === 'function' && jQuery.fn.jquery") == "3.7.1"
    )
    _shot(browser, "data-docs-index")

    rows[0].click()  # the rows are links (the page's click-row handler)
    until(browser, lambda d: "/validations/" in d.current_url, "the validation page")
    tables = until(
        browser,
        lambda d: [t for t in d.find_elements(By.CSS_SELECTOR, "table.table") if t.is_displayed()],
        "result tables",
    )
    assert browser.find_elements(By.CSS_SELECTOR, "table.table tbody tr")
    assert style(browser, "table.table", "width") != "auto"
    assert style(browser, "table.table td", "border-top-color") == "rgb(222, 226, 230)"
    assert len(tables) > 1
    _shot(browser, "data-docs-validation")
    requested = network.read(browser)
    assert any(u.endswith("/quality/assets/bootstrap/css/bootstrap.min.css") for u in requested)
    assert any("/quality/assets/font-awesome/webfonts/fa-solid-900" in u for u in requested)


def test_sign_out(signed_in, site: Site):
    from selenium.webdriver.common.by import By

    browser = signed_in
    browser.find_element(By.ID, "logout").click()
    until(browser, lambda d: urlsplit(d.current_url).path == "/quality/login", "the sign-in form")
    assert "You are signed out" in browser.find_element(By.TAG_NAME, "body").text
    assert not [c for c in browser.get_cookies() if c["name"] == "latam_quality_session"]
    browser.get(f"{site.base}/quality/")
    assert urlsplit(browser.current_url).path == "/quality/login"
