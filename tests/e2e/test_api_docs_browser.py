"""The API's interactive docs as a person sees them: headless Chromium (Debian's chromium +
chromedriver, driven by selenium) opens `/docs` without a key, and Swagger UI must draw every
operation of the OpenAPI document, grouped by tag and styled, from files the API serves itself.

Every request the browser makes is read from Chrome's DevTools performance log; a URL whose host
is not 127.0.0.1 or localhost fails the test, so a docs page that still named a CDN would be
caught even though there is no network to reach it. The page's Content-Security-Policy would
also block such a load, so the rendered operations show the local files sufficed.

The docs and `/openapi.json` need no database, so the API runs on a free loopback port against
a database that does not exist; "Try it out" runs `/healthz`, which needs none either.
Screenshots go to reports/api/.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import ROOT
from tests.e2e.browser import NetworkLog, headless_chrome, style, until
from tests.integration.observability_support import free_port

pytestmark = [pytest.mark.integration, pytest.mark.e2e]
SHOTS = ROOT / "reports" / "api"


@dataclass
class Api:
    base: str
    spec: dict


@pytest.fixture(scope="module")
def api() -> Iterator[Api]:
    from werkzeug.serving import make_server

    from api_service import create_app
    from api_service.config import get_api_config

    config = get_api_config(database_url="postgresql://nobody@127.0.0.1:1/none")
    app = create_app(config)
    spec = app.test_client().get("/openapi.json").get_json()
    server = make_server("127.0.0.1", free_port(), app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield Api(f"http://127.0.0.1:{server.server_port}", spec)
    finally:
        server.shutdown()
        app.extensions["latam_api"].db.close()


@pytest.fixture(scope="module")
def chrome():
    driver = headless_chrome(logs=("performance", "browser"))
    SHOTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


@pytest.fixture
def browser(chrome) -> Iterator:
    """After each test, every request the browser made must have stayed on the API's host, and
    the page must have logged no error (a blocked load or a script error would show there)."""
    log = NetworkLog()
    log.read(chrome)
    chrome.get_log("browser")
    yield chrome
    log.assert_only_local(chrome)
    errors = [e["message"] for e in chrome.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, f"the page logged errors: {errors}"


def _operations(spec: dict) -> set[tuple[str, str, str]]:
    """(tag, METHOD, path) of every operation of the document."""
    return {
        (operation["tags"][0], method.upper(), path)
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
    }


def test_docs_draw_every_operation_from_local_files(browser, api: Api):
    from selenium.webdriver.common.by import By

    browser.get(f"{api.base}/docs")
    until(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".opblock"), "operation blocks")
    drawn = browser.execute_script(
        """
        return [...document.querySelectorAll('.opblock-tag-section')].flatMap(section =>
          [...section.querySelectorAll('.opblock')].map(block => [
            section.querySelector('.opblock-tag').dataset.tag,
            block.querySelector('.opblock-summary-method').textContent,
            block.querySelector('.opblock-summary-path').dataset.path,
          ]));
        """
    )
    assert {tuple(op) for op in drawn} == _operations(api.spec)
    assert len(drawn) == len(_operations(api.spec))
    flights = browser.find_element(By.CSS_SELECTOR, "[data-path='/api/v1/flights']")
    assert flights.is_displayed() and flights.text == "/api/v1/flights"
    assert "LATAM airline data API" in browser.find_element(By.CSS_SELECTOR, ".info .title").text
    # Swagger UI's stylesheet applies: GET blocks are tinted blue, the method badge is filled
    get_block = "#operations-Flights-get_flights_list_flights"
    assert style(browser, get_block, "background-color") == "rgba(97, 175, 254, 0.1)"
    assert style(browser, f"{get_block} .opblock-summary-method", "background-color") == (
        "rgb(97, 175, 254)"
    )
    icon = browser.execute_script("return document.querySelector('link[rel=icon]').href")
    assert icon == f"{api.base}/docs/assets/favicon-32x32.png"
    assert _fetch_status(browser, icon) == 200
    _shot(browser, "api-docs")


def test_try_it_out_calls_the_api_itself(browser, api: Api):
    from selenium.webdriver.common.by import By

    browser.get(f"{api.base}/docs")
    operation = "#operations-Health-get_health_healthz"
    summary = until(
        browser,
        lambda d: d.find_elements(By.CSS_SELECTOR, f"{operation} .opblock-summary-control"),
        "the /healthz operation",
    )[0]
    summary.click()
    block = browser.find_element(By.CSS_SELECTOR, operation)
    until(browser, lambda d: block.find_elements(By.CSS_SELECTOR, ".try-out__btn"), "Try it out")
    block.find_element(By.CSS_SELECTOR, ".try-out__btn").click()
    until(browser, lambda d: block.find_elements(By.CSS_SELECTOR, ".execute"), "Execute")
    block.find_element(By.CSS_SELECTOR, ".execute").click()
    status = until(
        browser,
        lambda d: block.find_elements(
            By.CSS_SELECTOR, ".live-responses-table tr.response .response-col_status"
        ),
        "the live response",
    )[0]
    assert status.text.strip() == "200"
    body = block.find_element(By.CSS_SELECTOR, ".live-responses-table tr.response .microlight").text
    assert '"status": "ok"' in body
    request_url = block.find_element(By.CSS_SELECTOR, ".request-url pre").text
    assert urlsplit(request_url).netloc == urlsplit(api.base).netloc
    _shot(browser, "api-docs-try-it-out")


def test_only_the_docs_files_are_served(api: Api):
    """The asset route serves the few files the page names, nothing else of the package."""
    import urllib.error
    import urllib.request

    for name in ("VERSION", "LICENSE", "index.css", "oauth2-redirect.html", "..%2F__init__.py"):
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(f"{api.base}/docs/assets/{name}", timeout=10)
        assert caught.value.code == 404
    with urllib.request.urlopen(f"{api.base}/docs", timeout=10) as response:
        page = response.read().decode()
        csp = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp
    sources = {"/docs/assets/swagger-ui.css", "/docs/assets/swagger-ui-bundle.js",
               "/docs/assets/swagger-ui-standalone-preset.js", "/docs/assets/favicon-32x32.png"}  # fmt: skip
    assert all(f'"{source}"' in page for source in sources)


def _fetch_status(driver, url: str) -> int:
    return driver.execute_async_script(
        "const done = arguments[1]; fetch(arguments[0]).then(r => done(r.status), () => done(0));",
        url,
    )


def _shot(driver, name: str) -> Path:
    path = SHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    assert path.stat().st_size > 10_000
    return path
