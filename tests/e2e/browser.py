"""Headless Chromium for the browser tests: Debian's chromium and chromedriver, driven by selenium,
never fetching a driver from the network."""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


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
