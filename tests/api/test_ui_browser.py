"""/ui in headless Chromium: the real app under uvicorn on a free port, a database with the
example site, a day of readings plus the last hours (for the live chart) and plans; log in, look
at the site and plan pages (charts drawn: SVG sizes and coloured pixels in the screenshots) and
approve a plan as an operator.

Needs Debian's `chromium` and `chromium-driver` (scripts/services.sh installs them).
"""

from __future__ import annotations

import asyncio
import io
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import uvicorn
from PIL import Image
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.expected_conditions import staleness_of
from selenium.webdriver.support.ui import WebDriverWait

from energyhub.api.app import create_app
from energyhub.store.batch import ReadingBatch
from energyhub.store.db import connect, installed_backend, open_pool
from energyhub.store.embedded import free_port
from energyhub.store.maintenance import refresh_rollups
from energyhub.store.writer import ReadingWriter
from tests.api.conftest import World, build_world, settings_for

pytestmark = pytest.mark.slow

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1200,1000",
)
RECENT_H = 6


async def _recent_readings(world: World) -> None:
    """The last hours of b01's main and PV meters at 1 minute, so that now's chart has data."""
    now = datetime.now(UTC).replace(second=0, microsecond=0, tzinfo=None)
    minutes = np.arange(np.datetime64(now - timedelta(hours=RECENT_H)), np.datetime64(now),
                        np.timedelta64(1, "m")).astype("datetime64[ns]")  # fmt: skip
    t = np.arange(len(minutes))
    meters = {"b01/main": 400 + 150 * np.sin(t / 40), "b01/pv": 80 + 20 * np.cos(t / 30)}
    async with connect(world.url) as conn:
        backend = await installed_backend(conn)
    batch = ReadingBatch.concat(
        [
            ReadingBatch.from_columns(minutes, np.full(len(t), world.meters[name]), values)
            for name, values in meters.items()
        ]
    )
    async with open_pool(world.url, max_size=1) as pool:
        await ReadingWriter(pool, backend).write(batch)
    async with connect(world.url) as conn:
        await refresh_rollups(conn, backend)


@pytest.fixture
def served(pg_url: str) -> Iterator[tuple[str, World]]:
    """The app under uvicorn (in a thread) on a free port; its base URL and world."""
    world = asyncio.run(build_world(pg_url))
    asyncio.run(_recent_readings(world))
    port = free_port()
    config = uvicorn.Config(
        create_app(settings_for(pg_url)), host="127.0.0.1", port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", world
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[WebDriver]:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail("Chromium is missing: bash scripts/services.sh installs chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    browser.set_page_load_timeout(20)
    try:
        yield browser
    finally:
        browser.quit()


def coloured_pixels(element: WebElement) -> tuple[int, int]:
    """(distinct colours, saturated pixels) of an element's screenshot: axes, grid and text are
    grey, so saturated pixels are drawn data."""
    image = Image.open(io.BytesIO(element.screenshot_as_png)).convert("RGB")
    counts = image.getcolors(maxcolors=image.width * image.height) or []
    saturated = sum(n for n, rgb in counts if max(rgb) - min(rgb) > 60)
    return len(counts), saturated


def assert_chart_drawn(driver: WebDriver, name: str, min_pixels: int = 300) -> None:
    svg = driver.find_element(By.CSS_SELECTOR, f'svg[data-chart="{name}"]')
    assert svg.size["width"] > 300 and svg.size["height"] > 100, (name, svg.size)
    assert svg.find_elements(By.CSS_SELECTOR, "path.series, rect.bar"), name
    colours, saturated = coloured_pixels(svg)
    assert colours >= 5 and saturated >= min_pixels, (name, colours, saturated)


def test_operator_reviews_the_load_and_approves_a_plan(
    served: tuple[str, World], driver: WebDriver, tmp_path: Path
) -> None:
    base, world = served
    # a condition may read an element of the page a navigation is replacing: try again
    wait = WebDriverWait(driver, 10, ignored_exceptions=[StaleElementReferenceException])
    driver.get(f"{base}/ui/sites/b01")
    assert driver.find_element(By.ID, "message").text == "log in with an API key"
    driver.find_element(By.ID, "key").send_keys(world.token("operator", "b01"))
    login = driver.find_element(By.ID, "login")
    login.click()
    # the login form is served at the page's own URL: wait for it to go, not for the URL
    wait.until(staleness_of(login))
    assert driver.current_url == f"{base}/ui/sites/b01"
    assert_chart_drawn(driver, "load")
    labels = [p.get_attribute("data-name") for p in driver.find_elements(By.CSS_SELECTOR, "path")]
    assert labels == ["electricity", "PV"]
    driver.save_screenshot(str(tmp_path / "site.png"))
    refreshed = driver.execute_async_script(  # what the page's timer does every 30 s
        "const done = arguments[0];"
        "fetch(location.pathname + '/load-chart').then(r => r.text().then(t => done([r.status, t])));"
    )
    assert refreshed[0] == 200 and 'data-chart="load"' in refreshed[1]

    driver.get(f"{base}/ui")
    driver.find_element(
        By.CSS_SELECTOR, '[data-site="b01"] a[href="/ui/plans?site_id=b01"]'
    ).click()
    plan_id = world.plans["b01"]
    driver.find_element(By.CSS_SELECTOR, f'[data-plan="{plan_id}"] a').click()
    wait.until(lambda d: d.current_url == f"{base}/ui/plans/{plan_id}")
    assert driver.find_element(By.ID, "status").text == "draft"
    for name in ("dispatch", "soc", "import", "cost", "co2"):
        assert_chart_drawn(driver, name, min_pixels=100)
    driver.set_window_size(1200, 3000)
    driver.save_screenshot(str(tmp_path / "plan.png"))
    approve = driver.find_element(By.ID, "approve")
    approve.click()
    wait.until(staleness_of(approve))  # the approval reloads the page
    wait.until(lambda d: d.find_element(By.ID, "status").text == "approved")
    assert not driver.find_elements(By.ID, "approve")
