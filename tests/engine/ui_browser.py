"""A real headless Chromium, driven with Selenium, for the UI tests (and the README screenshots).

Selenium drives the distribution's own ``chromium`` through its ``chromedriver`` (Debian
packages ``chromium`` and ``chromium-driver``, which ``.ci/run`` installs): the WebDriver
standard, and browser and driver versions that always match, with nothing downloaded at run
time. :func:`find_chromium` says why not, when they are not installed.
"""

from __future__ import annotations

import shutil
import tempfile

CHROMIUM_ARGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage")


def find_chromium() -> tuple[str, str] | str:
    """(chromium, chromedriver) paths, or the reason they cannot be used."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if browser and driver:
        return browser, driver
    return ("Chromium and its driver are not installed (apt-get install -y chromium chromium-driver; "
            ".ci/run does this)")


def start_chromium(width: int = 1400, height: int = 1000):
    """A fresh headless Chromium (own profile) under Selenium; the caller quits it."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    found = find_chromium()
    if isinstance(found, str):
        raise RuntimeError(found)
    browser, driver = found
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in CHROMIUM_ARGS:
        options.add_argument(arg)
    options.add_argument(f"--window-size={width},{height}")
    options.add_argument(f"--user-data-dir={tempfile.mkdtemp(prefix='rd-chromium-')}")
    return webdriver.Chrome(service=Service(driver), options=options)
