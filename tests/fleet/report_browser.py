"""The fleet report in a real browser: headless Chromium (Debian `chromium`) driven by Selenium through the
Debian `chromium-driver`. Nothing is downloaded: the driver path is given, so Selenium Manager never runs.

`ReportPage` opens a report.html at 1400 px and answers what an operator sees: which host rows are
visible and in which order, the page's width, the row heights; it filters through the page's own form
controls, as a person would.
"""

import os
import shutil

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

WIDTH, HEIGHT = 1400, 900

# Flags for a browser that runs offline, alone and without a profile of its own.
CHROMIUM_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=%d,%d" % (WIDTH, HEIGHT)]


def find_chromium():
    """(browser, driver) paths, or pytest.skip - pytest.fail under CI, where .ci/run installs them."""
    browser = next(filter(None, map(shutil.which, ("chromium", "chromium-browser"))), None)
    driver = shutil.which("chromedriver")
    if browser and driver:
        return browser, driver
    message = ("Chromium or its driver is missing (browser: %s, driver: %s). Fix: apt-get install chromium "
               "chromium-driver (.ci/run does this)." % (browser, driver))
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)
    return None


class ReportPage:
    """One Chromium with a fresh profile in USER_DATA_DIR; JAVASCRIPT=False opens pages with scripts off."""

    def __init__(self, user_data_dir, javascript=True):
        browser, driver = find_chromium()
        options = webdriver.ChromeOptions()
        options.binary_location = browser
        for flag in CHROMIUM_FLAGS + ["--user-data-dir=%s" % user_data_dir]:
            options.add_argument(flag)
        if not javascript:
            options.add_argument("--blink-settings=scriptEnabled=false")
        self.driver = webdriver.Chrome(service=Service(executable_path=driver), options=options)
        self.driver.set_page_load_timeout(60)

    def close(self):
        self.driver.quit()

    def open(self, path, fragment=""):
        self.driver.get("file://%s%s" % (os.path.abspath(path), fragment))

    def js(self, script, *args):
        return self.driver.execute_script(script, *args)

    # -- what is on the screen ---------------------------------------------------------------
    def viewport_width(self):
        return self.js("return window.innerWidth")

    def page_width(self):
        """document.documentElement.scrollWidth: wider than the window means a horizontal scrollbar."""
        return self.js("return document.documentElement.scrollWidth")

    def host_rows(self):
        """[(host, status)] of the host rows a person sees, top to bottom."""
        return [tuple(pair) for pair in self.js(
            "return Array.from(document.querySelectorAll('tr.host'))"
            ".filter(row => row.getClientRects().length > 0)"
            ".map(row => [row.dataset.host, row.dataset.status]);")]

    def row_heights(self):
        """[(host, height in px)] of the visible host rows."""
        return [tuple(pair) for pair in self.js(
            "return Array.from(document.querySelectorAll('tr.host'))"
            ".filter(row => row.getClientRects().length > 0)"
            ".map(row => [row.dataset.host, row.getBoundingClientRect().height]);")]

    def count(self, selector):
        return self.js("return document.querySelectorAll(arguments[0]).length", selector)

    def filters_shown(self):
        return self.js("var f = document.getElementById('filters'); return f.getClientRects().length > 0")

    # -- what a person does --------------------------------------------------------------------
    def choose(self, name, value):
        """Pick VALUE in the filter form's select NAME."""
        Select(self.driver.find_element(By.CSS_SELECTOR, "#filters select[name=%s]" % name)).select_by_value(value)

    def search(self, text):
        field = self.driver.find_element(By.CSS_SELECTOR, "#filters input[name=q]")
        field.clear()
        if text:
            field.send_keys(text)
        else:  # clear() sends no input event
            self.js("arguments[0].dispatchEvent(new Event('input', {bubbles: true}))", field)

    def click(self, selector):
        self.driver.find_element(By.CSS_SELECTOR, selector).click()

    def screenshot(self, path):
        """The whole page at 1400 px wide, however long, as PNG; returns PATH."""
        height = self.js("return document.documentElement.scrollHeight")
        self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": WIDTH, "height": min(height, 16000), "deviceScaleFactor": 1, "mobile": False})
        try:
            self.driver.save_screenshot(path)
        finally:
            self.driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        return path
