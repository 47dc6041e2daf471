"""The UI seen as a person sees it: headless Chromium (Debian's chromium + chromium-driver, driven
by selenium) opens the Dagster UI's asset lineage page, the check results of the latest
materialization of curated/fact_flight (its audit checks), and the Data Docs page the API serves,
and reads what is on screen. Screenshots go to reports/ui/.

The world is built the way a user builds it: simulated events published to RabbitMQ, then
`latam run-once` against a fresh warehouse and Dagster instance; the Dagster webserver and the API
then serve them on free loopback ports.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from latam_dagster.demo import stop_code_servers
from tests.conftest import ROOT
from tests.e2e.browser import headless_chrome, until, visible_text
from tests.integration.observability_support import free_port, publish, simulated
from tests.integration.ui_support import site, start_webserver, stop, wait_webserver
from tests.waiting import eventually

pytestmark = [pytest.mark.integration, pytest.mark.e2e]
SHOTS = ROOT / "reports" / "ui"
WAIT_S = 90


@dataclass
class Platform:
    ui: str
    api: str
    api_key: str
    env: dict[str, str]
    data_docs: Path


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


@pytest.fixture(scope="module")
def platform(template_db: str, amqp_url: str, tmp_path_factory) -> Iterator[Platform]:
    home = tmp_path_factory.mktemp("dagster_home")
    with site(template_db, amqp_url, home) as s:
        s.env["LATAM_QUALITY_DOCS_DIR"] = str(home / "data_docs")
        webserver = None
        api = None
        try:
            publish(amqp_url, s.topology, simulated(31, 1500, systems=4, invalid=0.02))
            run = subprocess.run(
                [_bin("latam"), "run-once"], cwd=ROOT, env=s.env, capture_output=True, text=True,
                timeout=600,
            )  # fmt: skip
            assert run.returncode == 0, run.stdout + run.stderr
            port = free_port()
            webserver = start_webserver(s, port, False, home / "webserver.log")
            api, api_url, key = _start_api(s.env)
            wait_webserver(f"http://127.0.0.1:{port}", home / "webserver.log")
            yield Platform(f"http://127.0.0.1:{port}", api_url, key, s.env, home / "data_docs")
        finally:
            stop(webserver)
            stop_code_servers(home)
            if api is not None:
                api.shutdown()


def _start_api(env: dict[str, str]):
    from werkzeug.serving import make_server

    from api_service import create_app
    from api_service.config import READ_ONLY_ROLE, get_api_config, role_url
    from tests.integration.api_fixtures import new_api_key

    url = env["LATAM_WAREHOUSE_URL"]
    config = get_api_config(
        database_url=role_url(url, READ_ONLY_ROLE),
        cursor_secret="ui-test",
        key_cache_seconds=0.0,
        data_docs_dir=env["LATAM_QUALITY_DOCS_DIR"],
    )
    app = create_app(config)
    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{port}", new_api_key(url)


@pytest.fixture(scope="module")
def browser():
    driver = headless_chrome(window="1440,1000", page_load_timeout=WAIT_S)
    SHOTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


def _wait_for_text(driver, *texts: str, timeout: float = WAIT_S) -> str:
    """Wait until every text is visible on the page; returns the page's visible text."""

    def shown(d) -> str:
        text = visible_text(d)
        return text if all(t in text for t in texts) else ""

    return until(driver, shown, f"on screen: {list(texts)}", timeout)


def _shot(driver, name: str) -> Path:
    path = SHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


def _settled(driver, timeout: float = 30) -> None:
    """Wait until the page has no loading placeholder left (for a faithful screenshot)."""
    deadline = time.monotonic() + timeout
    while "Loading" in visible_text(driver) and time.monotonic() < deadline:
        time.sleep(0.5)


def test_asset_lineage_page(platform: Platform, browser):
    browser.get(f"{platform.ui}/assets/curated/fact_flight?view=lineage")
    text = _wait_for_text(browser, "fact_flight", "flight_events", "dim_airport", "Materialized")
    assert "flight_passenger_load" in text or "route_daily_performance" in text
    _settled(browser)
    assert _shot(browser, "dagster-lineage-fact_flight").stat().st_size > 10_000


def test_drain_materialization_and_its_metadata(platform: Platform, browser):
    browser.get(f"{platform.ui}/assets/raw/flight_events")
    _wait_for_text(browser, "flight_events", "Latest materialization", "ago")
    browser.get(f"{platform.ui}/assets/raw/flight_events?view=events")
    text = _wait_for_text(browser, "received", "inserted", "quarantined")
    assert "msg_per_s" in text
    _settled(browser)
    _shot(browser, "dagster-drain-raw-flight_events")


def _checks_of(platform: Platform, asset_path: str) -> list[str]:
    """The names of the checks the platform defines on an asset."""
    probe = subprocess.run(
        [sys.executable, "-c",
         "from latam_dagster.definitions import defs\n"
         "for spec in defs.resolve_asset_graph().asset_check_keys:\n"
         "    print('/'.join(spec.asset_key.path), spec.name)"],
        cwd=ROOT, env=platform.env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    pairs = (line.split(" ", 1) for line in probe.stdout.splitlines() if " " in line)
    return sorted(name for path, name in pairs if path == asset_path)


def _run_links(driver) -> list[str]:
    """The run ids the links of the page point to, in page order."""
    from selenium.webdriver.common.by import By

    hrefs = [a.get_attribute("href") or "" for a in driver.find_elements(By.TAG_NAME, "a")]
    return [h.split("/runs/", 1)[1].split("?", 1)[0] for h in hrefs if "/runs/" in h]


CHECK_RESULTS = ("Succeeded", "Failed", "Warning")
"""What the checks tab says of a check evaluated by the latest run (not "Not evaluated")."""


def test_latest_materialization_carries_its_check_results(platform: Platform, browser):
    """Every materialization of curated/fact_flight is audited: its audit checks (one per rule,
    and the reject share) show a result for the latest materialization, none "Not evaluated"."""
    from selenium.webdriver.common.by import By

    names = _checks_of(platform, "curated/fact_flight")
    audit = [n for n in names if n != "gx_suite"]
    assert "reject_share" in audit and "flight_keys_unique" in audit, names
    page = f"{platform.ui}/assets/curated/fact_flight"

    # the latest materialization, and the run that made it
    browser.get(f"{page}?view=events")
    _wait_for_text(browser, "Materialized in run")
    latest_run = _run_links(browser)[0]

    # the overview counts a latest result for every check
    browser.get(page)
    _wait_for_text(browser, "Latest materialization", "Latest check results")

    def counted() -> int:
        text = visible_text(browser)
        badges = text.split("Latest check results", 1)[-1].split("Asset history", 1)[0].split()
        return sum(int(b) for b in badges if b.isdigit())

    eventually(
        lambda: counted() == len(names), WAIT_S, f"a latest result for all {len(names)} checks"
    )

    # the checks tab: each check lists the status of its latest evaluation
    browser.get(f"{page}?view=checks")
    text = _wait_for_text(browser, f"Checks ({len(names)})", *names)
    lines = text.splitlines()
    listed = lines[lines.index("Execute all") + 1 :]
    status = {n: listed[listed.index(n) + 1] for n in names}
    assert "Not evaluated" not in status.values(), status
    assert all(v in CHECK_RESULTS for v in status.values()), status

    # and each audit check's latest evaluation targets the latest materialization, in its run
    for name in audit:
        browser.find_element(By.XPATH, f"//*[normalize-space(text())='{name}']").click()
        # the detail pane names the check above its Execute button, then its latest execution
        header = f"\n{name}\nExecute\n"

        def latest_execution(header=header) -> str | None:
            pane = visible_text(browser).partition(header)[2]
            return (
                pane.partition("Latest execution")[2] if "Target materialization" in pane else None
            )

        detail = eventually(latest_execution, WAIT_S, f"the latest execution of {name} on screen")
        assert "Passed" in detail or "Failed" in detail, detail[:500]
        runs = set(_run_links(browser))
        assert runs == {latest_run}, (name, runs, latest_run)
    _settled(browser)
    _shot(browser, "dagster-checks-fact_flight")


def test_data_docs_page(platform: Platform, browser):
    index = platform.data_docs / "index.html"
    assert index.exists(), f"run-once built no Data Docs at {index}"
    # the API wants a bearer key; the browser sends it on every request of this page
    browser.execute_cdp_cmd("Network.enable", {})
    browser.execute_cdp_cmd(
        "Network.setExtraHTTPHeaders",
        {"headers": {"Authorization": f"Bearer {platform.api_key}"}},
    )
    try:
        browser.get(f"{platform.api}/quality/docs/")
        text = _wait_for_text(browser, "Expectation", timeout=30)
        assert "Validation" in text or "Suite" in text
        _shot(browser, "data-docs-index")
    finally:
        browser.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {}})
