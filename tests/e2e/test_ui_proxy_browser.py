"""The Dagster UI through its proxy, in headless Chromium: without a login the browser gets nginx's
401 page; an analyst's browser gets the read-only UI, whose Materialize button is disabled and
says why; an operator's browser gets the full UI, where Materialize launches a run. The login
travels as the Authorization header on every request of the page (WebSocket included), as a
browser sends it once the user has typed it. Screenshots go to reports/ui/.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.browser import headless_chrome, visible_text
from tests.integration.ui_support import ANALYST, OPERATOR, Ui, basic, proxied_ui, run_ids
from tests.waiting import eventually

pytestmark = [pytest.mark.integration, pytest.mark.e2e]
ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "reports" / "ui"
WAIT_S = 90
ASSET_PAGE = "/assets/raw/flight_events"


@pytest.fixture(scope="module")
def ui(template_db, amqp_url, tmp_path_factory):
    with proxied_ui(template_db, amqp_url, tmp_path_factory.mktemp("ui_proxy_browser")) as u:
        yield u


@pytest.fixture
def browser():
    driver = headless_chrome(window="1400,900", page_load_timeout=WAIT_S)
    driver.execute_cdp_cmd("Network.enable", {})
    SHOTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


def _log_in(driver, user: tuple[str, str]) -> None:
    driver.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": basic(*user)})


def _materialize_button(driver):
    from selenium.common.exceptions import NoSuchElementException
    from selenium.webdriver.common.by import By

    try:
        return driver.find_element(By.XPATH, "//button[normalize-space(.)='Materialize']")
    except NoSuchElementException:
        return None


def _asset_page(driver, ui: Ui) -> None:
    driver.get(ui.url + ASSET_PAGE)
    eventually(
        lambda: "Never materialized" in visible_text(driver) and _materialize_button(driver),
        WAIT_S,
        "the asset page with its Materialize button",
    )


def _document_statuses(driver, url: str) -> list[int]:
    """HTTP statuses of the responses the browser received for `url` (its performance log)."""
    statuses = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.responseReceived":
            response = message["params"]["response"]
            if response["url"] == url:
                statuses.append(response["status"])
    return statuses


def test_without_a_login_the_browser_gets_401(ui: Ui):
    driver = headless_chrome(logs=("performance",), page_load_timeout=WAIT_S)
    try:
        url = ui.url + ASSET_PAGE
        driver.get(url)
        # the browser would now ask for a login; the page behind it never arrives
        assert eventually(lambda: _document_statuses(driver, url), WAIT_S, "the answer") == [401]
        assert "flight_events" not in visible_text(driver)
    finally:
        driver.quit()


def test_an_analyst_sees_the_ui_but_cannot_materialize(ui: Ui, browser):
    from selenium.webdriver.common.action_chains import ActionChains

    _log_in(browser, ANALYST)
    _asset_page(browser, ui)
    button = _materialize_button(browser)
    assert button.get_attribute("disabled") is not None
    ActionChains(browser).move_to_element(button).perform()
    eventually(
        lambda: "You do not have permission to materialize assets" in visible_text(browser),
        WAIT_S,
        "the read-only UI's explanation",
    )
    browser.save_screenshot(str(SHOTS / "dagster-proxy-analyst-read-only.png"))
    runs = run_ids(ui)
    button.click()  # a disabled button: nothing happens
    assert "Launched run" not in visible_text(browser)
    assert run_ids(ui) == runs


def test_an_operator_materializes_from_the_ui(ui: Ui, browser):
    _log_in(browser, OPERATOR)
    _asset_page(browser, ui)
    button = _materialize_button(browser)
    assert button.get_attribute("disabled") is None
    runs = run_ids(ui)
    button.click()
    eventually(
        lambda: "Launched run" in visible_text(browser), WAIT_S, "the UI reporting the launched run"
    )
    browser.save_screenshot(str(SHOTS / "dagster-proxy-operator-launched.png"))
    new = eventually(lambda: set(run_ids(ui)) - set(runs), WAIT_S, "the run in the instance")
    assert len(new) == 1  # queued for the daemon, which this test does not run
