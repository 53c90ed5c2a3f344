"""Headless Chromium, driven by Selenium through the chromedriver of the same Debian package, for
tests that use the console as an operator does (`make browser` installs both).

Where Chromium is missing the test is skipped with the reason, except on CI (`CI` set), where a
missing browser is a failed setup, not a reason to check nothing.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # Without these Chromium phones home at start; the closed network refuses it and it stalls.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,900",
]
WIDTH = 1280


def require_chromium() -> None:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not Path(p).exists()]
    if not missing:
        return
    message = f"{', '.join(missing)} not installed: `make browser` installs Debian's chromium"
    if os.environ.get("CI"):
        pytest.fail(message + " (on CI the browser test must run)")
    pytest.skip(message)


class Browser:
    """One Chromium with a fresh profile, pointed at one web app."""

    def __init__(self, base_url: str, screenshots: Path):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        self.base_url = base_url
        self.screenshots = screenshots
        self.profile = tempfile.mkdtemp(prefix="bindery-chromium-")
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in [*FLAGS, f"--user-data-dir={self.profile}"]:
            options.add_argument(flag)
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        self.driver.set_page_load_timeout(30)

    def quit(self) -> None:
        self.driver.quit()
        shutil.rmtree(self.profile, ignore_errors=True)

    # -- reading and acting ---------------------------------------------------------------------

    def open(self, path: str) -> None:
        self.driver.get(self.base_url + path)

    @property
    def path(self) -> str:
        return self.driver.current_url.removeprefix(self.base_url)

    @property
    def source(self) -> str:
        return self.driver.page_source

    def find(self, css: str):
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, css)

    def find_all(self, css: str) -> list:
        from selenium.webdriver.common.by import By

        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def text(self, css: str) -> str:
        return self.find(css).text

    def type(self, css: str, value: str) -> None:
        field = self.find(css)
        field.clear()
        field.send_keys(value)

    def click(self, css: str) -> None:
        """Click something that does not leave the page (a checkbox)."""
        self.find(css).click()

    def follow(self, css: str, timeout: float = 30) -> None:
        """Click a link or a submit button, and wait until the next page has loaded."""
        self._leaving()
        self.find(css).click()
        self._arrived(timeout)

    def _leaving(self) -> None:
        # A mark on this page's window object: gone once another page is loaded.
        self.driver.execute_script("window.binderyLeaving = true")

    def _arrived(self, timeout: float) -> None:
        self.wait_for(
            lambda b: b.driver.execute_script(
                "return !window.binderyLeaving && document.readyState === 'complete'"
            ),
            timeout=timeout,
            every=0.05,
            what="the next page",
        )

    def wait_for(self, condition, timeout: float = 30, every: float = 0.2, what: str = ""):
        """Until `condition(self)` is truthy; returns it."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = condition(self)
            except Exception:  # noqa: BLE001 - the page is still changing under us
                value = None
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"waited {timeout:g}s for {what or condition}: at {self.path}")
            time.sleep(every)

    def screenshot(self, name: str) -> Path:
        """The whole page, as tall as it is, as `<screenshots>/<name>.png`."""
        height = self.driver.execute_script("return document.documentElement.scrollHeight")
        metrics = {"width": WIDTH, "height": min(int(height), 2400), "deviceScaleFactor": 1}
        self.driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride", {**metrics, "mobile": False}
        )
        path = self.screenshots / f"{name}.png"
        try:
            self.driver.save_screenshot(str(path))
        finally:
            self.driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        return path
