"""``ray-durable ui`` in a real headless Chromium: what a person sees and can do.

The static pages run against logs written for real into local storage (tests/replay/logs.py)
by the real CLI command (``python -m engine ui``), which must start no Ray process; the live
refresh runs against a workflow that Ray is running. Skipped, saying why, only where Chromium
is not installed (``.ci/run`` installs it).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.request

import pytest

import engine as workflow
from engine.ui import serve
from tests.engine import tasks
from tests.engine.ui_browser import find_chromium, start_chromium
from tests.replay.logs import LogBuilder, failed, resumed_after_failure, retry_and_continuation, running, write_log

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
pytestmark = pytest.mark.skipif(isinstance(find_chromium(), str), reason=str(find_chromium()))


def fan_out(workflow_id: str, width: int = 300) -> LogBuilder:
    b = LogBuilder(workflow_id)
    b.submit()
    b.run("run-1", dt=2.0)  # two seconds waiting for a driver: drawn short
    for i in range(width):
        b.schedule(f"work_{i}", name="tests.work", dt=0.001)
    for i in range(width):
        b.start(f"work_{i}", dt=0.001)
    for i in range(width):
        b.complete(f"work_{i}", i, dt=0.002)
    b.schedule("total").start("total").complete("total", 1).succeed(1)
    return b


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp("ui") / "store")
    logs = [failed("etl-failed"), retry_and_continuation("etl-ok"), running("etl-running"),
            resumed_after_failure("etl-resumed"), fan_out("fan-300")]

    async def write() -> None:
        for builder in logs:
            await write_log(root, {}, builder.workflow_id, builder.events, batches=[500] * 10)

    asyncio.run(write())
    return root


@pytest.fixture(scope="module")
def ui(store):
    """The real command, ``python -m engine ui --port 0 --json``: its URL, and the process."""
    env = dict(os.environ, RAY_AUTH_MODE="disabled")
    env.pop("RAY_ADDRESS", None)
    process = subprocess.Popen([sys.executable, "-m", "engine", "ui", "--storage", store, "--port", "0", "--json"],
                               cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = process.stdout.readline()
    assert line, process.stderr.read()
    url = json.loads(line)["url"]
    yield url, process
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture(scope="module")
def browser():
    driver = start_chromium()
    yield driver
    driver.quit()


def _wait(condition, timeout: float = 60.0, what: str = "the page"):
    from selenium.common.exceptions import StaleElementReferenceException

    deadline = time.monotonic() + timeout
    while True:
        try:
            result = condition()
        except StaleElementReferenceException:  # the page re-rendered between finding and reading
            result = None
        if result:
            return result
        assert time.monotonic() < deadline, f"{what} never showed it"
        time.sleep(0.1)


def _visible_rows(browser) -> dict[str, str]:
    from selenium.webdriver.common.by import By

    return {row.get_attribute("data-workflow"): row.find_element(By.CSS_SELECTOR, ".status").text
            for row in browser.find_elements(By.CSS_SELECTOR, "tr[data-workflow]") if row.is_displayed()}


def test_the_list_filters_and_searches(ui, browser):
    from selenium.webdriver.common.by import By

    url, _process = ui
    browser.get(url)
    assert _visible_rows(browser) == {"etl-failed": "FAILED", "etl-ok": "SUCCESSFUL", "etl-resumed": "SUCCESSFUL",
                                      "etl-running": "RESUMABLE", "fan-300": "SUCCESSFUL"}
    failed_row = browser.find_element(By.CSS_SELECTOR, "tr[data-workflow='etl-failed']")
    assert failed_row.find_elements(By.TAG_NAME, "td")[-1].text == "flaky"  # the failed task
    browser.find_element(By.CSS_SELECTOR, "input[value='FAILED']").click()
    browser.find_element(By.CSS_SELECTOR, "form.filters button").click()
    _wait(lambda: _visible_rows(browser) == {"etl-failed": "FAILED"}, what="the FAILED filter")
    browser.find_element(By.LINK_TEXT, "clear").click()
    search = _wait(lambda: browser.find_element(By.CSS_SELECTOR, "input[type=search]"))
    search.send_keys("etl-r")
    search.submit()
    _wait(lambda: set(_visible_rows(browser)) == {"etl-running", "etl-resumed"}, what="the search")
    browser.find_element(By.LINK_TEXT, "etl-resumed").click()
    _wait(lambda: "etl-resumed" in browser.find_element(By.TAG_NAME, "h1").text, what="the workflow page")


def test_a_failed_workflow_says_why(ui, browser):
    from selenium.webdriver.common.by import By

    url, _process = ui
    browser.get(url + "workflows/etl-failed")
    failure = browser.find_element(By.CSS_SELECTOR, ".failure")
    assert failure.is_displayed()
    assert "Failed at task flaky, attempt 3: RuntimeError: attempt 3 failed" in failure.text
    lanes = browser.find_elements(By.CSS_SELECTOR, ".tl-row.lane")
    assert [lane.get_attribute("data-task") for lane in lanes if lane.is_displayed()] == ["ok", "flaky"]
    bars = browser.find_elements(By.CSS_SELECTOR, ".tl-row.lane[data-task='flaky'] .attempt")
    assert [b.get_attribute("data-outcome") for b in bars] == ["failed"] * 3 and all(b.is_displayed() for b in bars)
    cells = browser.find_element(By.CSS_SELECTOR, "table.tasks tr[data-task='flaky']").find_elements(By.TAG_NAME, "td")
    assert cells[2].text == "FAILED" and cells[3].text == "3"
    events = browser.find_element(By.CSS_SELECTOR, "details.events")
    assert not browser.find_element(By.CSS_SELECTOR, "table.events").is_displayed()
    events.find_element(By.TAG_NAME, "summary").click()
    rows = browser.find_elements(By.CSS_SELECTOR, "table.events tbody tr")
    assert len(rows) == 15 and rows[-1].is_displayed() and "workflow.failed" in rows[-1].text
    assert "Start the UI with --load-payloads" in browser.find_element(By.ID, "payloads").text


def test_a_resumed_workflow_shows_its_runs(ui, browser):
    from selenium.webdriver.common.by import By

    url, _process = ui
    browser.get(url + "workflows/etl-resumed")
    runs = browser.find_elements(By.CSS_SELECTOR, ".tl-runs .run")
    assert [r.text for r in runs] == ["run 1", "run 2"] and all(r.is_displayed() for r in runs)
    assert [r.get_attribute("class").split()[-1] for r in runs] == ["failed", "succeeded"]
    assert browser.find_element(By.CSS_SELECTOR, ".tl-runs .tl-idle").is_displayed()  # 5 s idle, drawn short
    facts = browser.find_element(By.CSS_SELECTOR, "dl.facts").text
    assert "run 2" in facts and "(resumed)" in facts


def test_a_300_task_fan_out_fits_one_screen_and_expands(ui, browser):
    from selenium.webdriver.common.by import By

    url, _process = ui
    browser.get(url + "workflows/fan-300")
    chart = browser.find_element(By.CSS_SELECTOR, ".tl")
    height = browser.execute_script("return window.innerHeight")
    assert chart.size["height"] < height / 3, chart.size
    toggle = browser.find_element(By.CSS_SELECTOR, ".tl-row.group button.toggle")
    assert toggle.text == "\u25b8 work \u00d7300" and toggle.is_displayed()
    members = browser.find_elements(By.CSS_SELECTOR, ".tl-row.lane[data-member-of]")
    assert len(members) == 300 and not any(m.is_displayed() for m in members[:5])
    toggle.click()
    _wait(lambda: all(m.is_displayed() for m in members[:5] + members[-5:]), what="the expanded group")
    assert toggle.text.startswith("\u25be") and chart.size["height"] > height
    toggle.click()
    _wait(lambda: not members[0].is_displayed(), what="the collapsed group")
    # The tasks table of a wide fan-out opens on request.
    assert not browser.find_element(By.CSS_SELECTOR, "table.tasks").is_displayed()


def test_output_values_are_an_opt_in(store, browser):
    from selenium.webdriver.common.by import By

    server = serve(store, {}, port=0, load_payloads=True)
    try:
        browser.get(server.url + "workflows/etl-ok")
        assert "load output values" in browser.find_element(By.ID, "payloads").text
        assert "[('ray', 2), ('log', 1)]" not in browser.page_source
        browser.find_element(By.LINK_TEXT, "load output values").click()
        table = _wait(lambda: browser.find_elements(By.CSS_SELECTOR, "table.outputs"), what="the values")[0]
        assert "[('ray', 2), ('log', 1)]" in table.text and "unpickled from storage" in browser.page_source
    finally:
        server.shutdown()
        server.server_close()


def test_the_ui_command_starts_no_ray_and_answers_404s(ui):
    import psutil

    url, process = ui
    assert psutil.Process(process.pid).children(recursive=True) == []
    with urllib.request.urlopen(url + "api/workflows") as response:
        listed = {row["workflow_id"]: row["status"] for row in json.load(response)}
    assert listed["etl-running"] == "RESUMABLE" and listed["etl-failed"] == "FAILED"
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(url + "workflows/etl-faild")
    assert missing.value.code == 404 and "etl-failed" in missing.value.read().decode()
    code = ("import sys, urllib.request\n"
            "from engine.ui import serve\n"
            "server = serve(sys.argv[1], {}, port=0)\n"
            "for page in ('', 'workflows/etl-ok', 'api/workflows/etl-ok', 'fragment/list'):\n"
            "    urllib.request.urlopen(server.url + page).read()\n"
            "assert 'ray' not in sys.modules, 'the UI imported ray'\n")
    proc = subprocess.run([sys.executable, "-c", code, process.args[5]], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_the_page_refreshes_while_the_workflow_runs(local, wid, browser):
    """A workflow run on Ray: its page, opened while it runs, updates in place until it ends."""
    from selenium.webdriver.common.by import By

    server = serve(local["url"], {}, port=0)
    try:
        ref = workflow.run_async(tasks.slow.bind(tasks.slow.bind(1, 2), 2), workflow_id=wid)
        _wait(lambda: workflow.get_status(wid) == workflow.RUNNING, what="the workflow")
        browser.get(server.url + f"workflows/{wid}")
        assert browser.find_element(By.CSS_SELECTOR, "#live .status").text != "SUCCESSFUL"
        browser.execute_script("window.notReloaded = true")
        _wait(lambda: browser.find_element(By.CSS_SELECTOR, "#live .status").text == "SUCCESSFUL",
              timeout=120, what="the running workflow's page")
        assert browser.execute_script("return window.notReloaded") is True  # refreshed in place
        assert workflow.get_output(wid) == 1 and ref is not None
        lanes = browser.find_elements(By.CSS_SELECTOR, ".tl-row.lane")
        assert len(lanes) == 2 and all(
            lane.find_element(By.CSS_SELECTOR, ".attempt").get_attribute("data-outcome") == "ok" for lane in lanes)
    finally:
        server.shutdown()
        server.server_close()
