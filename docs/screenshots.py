"""Make the README's screenshots of ``ray-durable ui``: real workflows, a real headless Chromium.

    .venv/bin/python docs/screenshots.py

Runs a few workflows on a local Ray into a fresh storage (the demo's word count with its
continuation, one whose flaky task is retried, one that fails and is resumed, a 300-task
fan-out), serves that storage with the UI, and saves PNGs of its pages next to this file.
Needs Chromium and its driver (apt-get install chromium chromium-driver).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

import ray  # noqa: E402

import engine as workflow  # noqa: E402
from engine.demo import build_dag  # noqa: E402
from engine.ui import serve  # noqa: E402
from tests.engine.ui_browser import start_chromium  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


@ray.remote
def extract(day: str) -> list[int]:
    time.sleep(0.3)
    return list(range(len(day)))


@ray.remote
def flaky_load(rows: list[int], marker: str) -> int:
    time.sleep(0.2)
    with open(marker, "a") as f:
        f.write("x")
    if os.path.getsize(marker) < 3:
        raise ConnectionError("warehouse unavailable")
    return len(rows)


@ray.remote
def report(counts: list[int]) -> str:
    return f"{sum(counts)} rows"


@ray.remote
def square(x: int) -> int:
    return x * x


@ray.remote
def total(values: list[int]) -> int:
    return sum(values)


def main() -> None:
    storage = tempfile.mkdtemp(prefix="rd-shots-")
    scratch = tempfile.mkdtemp(prefix="rd-shots-scratch-")
    workflow.init(storage, address="local", num_cpus=2)
    workflow.run(build_dag(), workflow_id="demo-wordcount")
    days = [extract.bind(d) for d in ("2026-11-28", "2026-11-29", "2026-11-30")]
    loads = [workflow.options(max_retries=3, retry_exceptions=True)(flaky_load).bind(d, os.path.join(scratch, f"m{i}"))
             for i, d in enumerate(days)]
    workflow.run(report.bind(loads), workflow_id="etl-2026-11-30")
    broken = os.path.join(scratch, "never")
    try:
        workflow.run(report.bind([flaky_load.bind(extract.bind("x"), broken)]), workflow_id="etl-broken")
    except workflow.WorkflowExecutionError:
        pass
    workflow.run(total.bind([square.bind(i) for i in range(300)]), workflow_id="fan-out-300")
    ray.shutdown()

    server = serve(storage, {}, port=0)
    browser = start_chromium(1280, 860)
    try:
        for page, name in (("", "ui-list.png"), ("workflows/etl-2026-11-30", "ui-workflow.png"),
                           ("workflows/etl-broken", "ui-failed.png"), ("workflows/fan-out-300", "ui-fan-out.png")):
            browser.get(server.url + page)
            time.sleep(0.5)
            browser.save_screenshot(os.path.join(HERE, name))
            print("wrote", os.path.join(HERE, name))
    finally:
        browser.quit()
        server.shutdown()


if __name__ == "__main__":
    main()
