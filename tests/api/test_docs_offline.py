"""/docs and /redoc in headless Chromium with every host but this one unresolvable: both list
every operation of /openapi.json, and no request leaves 127.0.0.1 (Swagger UI and ReDoc come
with the package, not from a CDN)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from tests.api.conftest import World
from tests.api.test_ui_browser import CHROMEDRIVER, CHROMIUM, FLAGS, served

__all__ = ["served"]  # the fixture, imported to be used here

pytestmark = pytest.mark.slow

OFFLINE = (
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",  # no name resolves: no CDN
    "--proxy-server=http://127.0.0.1:9",  # and nothing by address goes out either
    "--proxy-bypass-list=127.0.0.1",
)


@pytest.fixture
def offline_driver(tmp_path: Path) -> Iterator[WebDriver]:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail("Chromium is missing: bash scripts/services.sh installs chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, *OFFLINE, f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    browser = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    browser.set_page_load_timeout(20)
    try:
        yield browser
    finally:
        browser.quit()


def requested_hosts(driver: WebDriver) -> set[str]:
    """Hosts of every request the page sent, from Chromium's performance log (a request the
    page's Content-Security-Policy blocked was never sent)."""
    urls: dict[str, str] = {}
    blocked: set[str] = set()
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        params = message.get("params", {})
        if message["method"] == "Network.requestWillBeSent":
            urls[params["requestId"]] = params["request"]["url"]
        elif message["method"] == "Network.loadingFailed" and params.get("blockedReason") == "csp":
            blocked.add(params["requestId"])
    return {
        urlsplit(url).hostname or ""
        for request, url in urls.items()
        if url.startswith("http") and request not in blocked
    }


def operations(base: str) -> list[tuple[str, str]]:
    schema = httpx.get(f"{base}/openapi.json").json()
    return [(method.upper(), path) for path, item in schema["paths"].items() for method in item]


def test_swagger_ui_lists_every_operation_offline(
    served: tuple[str, World], offline_driver: WebDriver
) -> None:
    base, _ = served
    expected = operations(base)
    offline_driver.get(f"{base}/docs")
    WebDriverWait(offline_driver, 20).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, ".opblock")) >= len(expected)
    )
    shown = {
        (
            block.find_element(By.CSS_SELECTOR, ".opblock-summary-method").text,
            block.find_element(By.CSS_SELECTOR, ".opblock-summary-path").get_attribute("data-path"),
        )
        for block in offline_driver.find_elements(By.CSS_SELECTOR, ".opblock")
    }
    assert shown == set(expected)
    assert requested_hosts(offline_driver) == {"127.0.0.1"}


def test_redoc_lists_every_operation_offline(
    served: tuple[str, World], offline_driver: WebDriver
) -> None:
    base, _ = served
    expected = operations(base)
    offline_driver.get(f"{base}/redoc")
    selector = "[data-section-id^='operation/']"
    WebDriverWait(offline_driver, 20).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, selector)) >= len(expected)
    )
    assert len(offline_driver.find_elements(By.CSS_SELECTOR, selector)) == len(expected)
    assert requested_hosts(offline_driver) == {"127.0.0.1"}
