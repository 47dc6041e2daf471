"""Headless Chromium for the browser tests: Debian's chromium and chromedriver, driven by selenium,
never fetching a driver from the network; waiting for what a page shows, its computed styles, and
every URL it requested (from the DevTools performance log)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
WAIT_S = 30
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
# schemes that name no host: inline images and fonts of the stylesheets, blank frames
HOSTLESS_SCHEMES = {"data", "blob", "about"}


def headless_chrome(
    window: str = "1400,1000", logs: Sequence[str] = (), page_load_timeout: float = 60
):
    """A started driver; `logs` names the Chrome log types to keep (e.g. `performance` to see
    every request the page makes). Fails the test when chromium is not installed."""
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        pytest.fail(
            "chromium/chromium-driver not installed: run infra/ci/install-tools.sh (make tools)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # never let selenium fetch a driver
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={window}", "--lang=en-US"):  # fmt: skip
        options.add_argument(arg)
    if logs:
        options.set_capability("goog:loggingPrefs", dict.fromkeys(logs, "ALL"))
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(page_load_timeout)
    return driver


def visible_text(driver) -> str:
    """The text the page shows (its body's)."""
    from selenium.webdriver.common.by import By

    return driver.find_element(By.TAG_NAME, "body").text


def until(driver, condition, what: str, timeout: float = WAIT_S):
    """Wait until `condition(driver)` returns something true, and return that; on timeout fail
    with `what` and the page's text."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.2).until(condition)
    except TimeoutException:
        body = driver.execute_script("return document.body ? document.body.innerText : ''")
        raise AssertionError(
            f"{what}: not true after {timeout:.0f} s\n---\n{body[:2000]}"
        ) from None


def style(driver, selector: str, prop: str) -> str:
    """The computed value of CSS property `prop` of the first element `selector` matches."""
    return driver.execute_script(
        "const e = document.querySelector(arguments[0]);"
        "return e ? getComputedStyle(e).getPropertyValue(arguments[1]) : null;",
        selector,
        prop,
    )


@dataclass
class NetworkLog:
    """Every URL the page asked for, from the DevTools performance log."""

    urls: list[str] = field(default_factory=list)

    def read(self, driver) -> list[str]:
        """Drain the browser's log (each read returns only new entries)."""
        self.urls += requested_urls(driver.get_log("performance"))
        return self.urls

    def assert_only_local(self, driver) -> None:
        foreign = foreign_urls(self.read(driver))
        assert not foreign, f"the browser asked another host for: {foreign}"


def requested_urls(entries: list[dict]) -> list[str]:
    urls = []
    for entry in entries:
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def foreign_urls(urls: list[str]) -> list[str]:
    """URLs that go (or would go) to a host other than the platform's own."""
    foreign = []
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme in HOSTLESS_SCHEMES:
            continue
        if parts.scheme not in ("http", "https", "ws", "wss") or parts.hostname not in LOCAL_HOSTS:
            foreign.append(url)
    return foreign
