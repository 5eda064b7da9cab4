"""The HTML report in a real headless Chromium: collapse, details, search, load time.

Chromium and chromedriver come from the distribution (tools/install-chromium.sh);
nothing is downloaded.  Locally a missing browser skips; under CI=true it fails.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import unittest

import pytest

from os_trace_plugins.report._html import render_html
from os_trace_plugins.report._model import Trace
from os_trace_plugins.store._reader import StoreReader
from tests.store_fixtures import Recorder, fill_store, openstack_trace, wide_trace

CHROMIUM = os.environ.get("OS_TRACE_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("OS_TRACE_CHROMEDRIVER", "/usr/bin/chromedriver")
SCREENSHOT_DIR = os.environ.get("OS_TRACE_SCREENSHOT_DIR", tempfile.gettempdir())


def _require_browser() -> None:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package (pip install selenium)")
    if not missing:
        return
    msg = (f"HTML report test needs {', '.join(missing)}; install with "
           f"tools/install-chromium.sh")
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(msg, pytrace=False)
    pytest.skip(msg)


def _driver(profile: str):  # type: ignore[no-untyped-def]
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                 f"--user-data-dir={profile}", "--window-size=1400,900"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER),
                              options=options)
    driver.set_page_load_timeout(30)
    return driver


class ChromiumReportTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        _require_browser()
        cls.tmp = tempfile.mkdtemp(prefix="os-trace-html-")
        cls.driver = _driver(os.path.join(cls.tmp, "profile"))

    @classmethod
    def tearDownClass(cls) -> None:
        cls.driver.quit()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def _report(self, rec: Recorder, trace_id: str, name: str) -> str:
        store = os.path.join(self.tmp, f"{name}.db")
        fill_store(store, rec.take()).shutdown()
        with StoreReader(store) as reader:
            trace = Trace.from_dicts(reader.spans(trace_id))
        path = os.path.join(self.tmp, f"{name}.html")
        with open(path, "w", encoding="utf-8") as f:
            f.write(render_html(trace))
        return path

    def _open(self, path: str) -> float:
        t0 = time.perf_counter()
        self.driver.get("file://" + path)
        from selenium.webdriver.support.ui import WebDriverWait
        WebDriverWait(self.driver, 10).until(
            lambda d: d.find_element("tag name", "body").get_attribute("data-ready") == "1")
        return time.perf_counter() - t0

    def _visible_rows(self) -> int:
        return int(self.driver.execute_script(
            "return document.querySelectorAll('.row:not(.hidden)').length"))

    def test_collapse_details_search_and_screenshot(self) -> None:
        from selenium.webdriver.common.by import By

        rec = Recorder()
        trace_id = openstack_trace(rec)
        self._open(self._report(rec, trace_id, "openstack"))
        d = self.driver
        rows = d.find_elements(By.CSS_SELECTOR, ".row")
        self.assertEqual(len(rows), 8)
        self.assertEqual(self._visible_rows(), 8)
        # no network: nothing external is referenced
        self.assertFalse(d.execute_script(
            "return [...document.querySelectorAll('[src],[href]')].length"))

        # collapse the conductor SERVER subtree: its 4 children (+ worker) disappear
        server = next(r for r in rows if r.find_element(By.CLASS_NAME, "name").text
                      == "build_instances")
        server.find_element(By.CLASS_NAME, "toggle").click()
        self.assertEqual(self._visible_rows(), 3)
        hidden = [r.find_element(By.CLASS_NAME, "name").get_attribute("textContent")
                  for r in rows if not r.is_displayed()]
        self.assertIn("FakeDriver.spawn", hidden)
        self.assertIn("compute.post_build process", hidden)
        server.find_element(By.CLASS_NAME, "toggle").click()
        self.assertEqual(self._visible_rows(), 8)

        # open the driver span's details: attributes, events and the error
        driver_row = next(r for r in rows if r.find_element(By.CLASS_NAME, "name").text
                          == "FakeDriver.spawn")
        driver_row.find_element(By.CLASS_NAME, "name").click()
        panel = d.find_element(By.ID, "details")
        self.assertTrue(panel.is_displayed())
        text = panel.text
        self.assertIn("openstack.driver.name", text)
        self.assertIn("FakeDriver", text)
        self.assertIn("hypervisor unreachable", text)
        self.assertIn("exception", text)  # the recorded exception event
        self.assertIn("nova-conductor", text)

        # search dims what does not match
        d.find_element(By.ID, "search").send_keys("SELECT")
        self.assertEqual(len(d.find_elements(By.CSS_SELECTOR, ".row.hit")), 1)
        self.assertEqual(len(d.find_elements(By.CSS_SELECTOR, ".row.dim")), 7)
        self.assertIn("1 of 8", d.find_element(By.ID, "hits").text)

        # summary: per service and per kind
        summary = d.find_element(By.ID, "summary").text
        for word in ("nova-api", "nova-conductor", "nova-compute", "rpc", "db", "driver"):
            self.assertIn(word, summary)
        shot = os.path.join(SCREENSHOT_DIR, "os-trace-report.png")
        self.assertTrue(d.save_screenshot(shot))
        self.assertGreater(os.path.getsize(shot), 10_000)

    def test_5000_span_report_opens_under_3s(self) -> None:
        rec = Recorder()
        trace_id = wide_trace(rec, 5000)
        path = self._report(rec, trace_id, "big")
        elapsed = self._open(path)
        self.assertEqual(self._visible_rows(), 5000)
        self.assertLess(elapsed, 3.0, f"5000-span report took {elapsed:.2f}s to open")
        with open(os.path.join(SCREENSHOT_DIR, "os-trace-report-5000.txt"), "w") as f:
            f.write(f"{elapsed:.3f}\n")
