"""Two clusters that share a storage race to resume one workflow, 20 times: exactly one drives it.

Each driver below runs a Ray cluster of its own (separate processes, GCS and managers), as two
clusters of one application would. The claim is a compare-and-append on the workflow's log
and a live lease refuses a second claim, so every round one resume returns the output and the
other is refused with WorkflowRunningError; the task runs once per resume that won.
"""

import os
import queue
import subprocess
import sys
import threading

import pytest

import engine as workflow
from tests.engine import tasks

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROUNDS = 20


def _answer(driver, timeout: float = 300.0) -> str:
    """The driver's next result line (Ray prints lines of its own on stdout too). Lines are read
    by a thread per driver: a buffered pipe and select() together can miss a waiting line."""
    while True:
        try:
            line = driver.lines.get(timeout=timeout)
        except queue.Empty:
            driver.kill()
            pytest.fail(f"no answer within {timeout:.0f}s: {_stderr(driver)}")
        assert line, _stderr(driver)
        if line.split(maxsplit=1)[:1] in (["READY"], ["OK"], ["RUNNING"], ["ERROR"]):
            return line


def _start(storage: str, env: dict, err_path) -> subprocess.Popen:
    driver = subprocess.Popen([sys.executable, "-m", "tests.engine.cluster_race_driver", storage], cwd=ROOT,
                              env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=open(err_path, "w"), text=True)  # a pipe nobody reads would fill up
    driver.err_path, driver.lines = err_path, queue.Queue()

    def read() -> None:
        for line in driver.stdout:
            driver.lines.put(line)
        driver.lines.put("")

    threading.Thread(target=read, daemon=True).start()
    return driver


def _stderr(driver) -> str:
    driver.poll()
    with open(driver.err_path) as f:
        return f"(exit code {driver.returncode}) " + f.read()[-3000:]


@pytest.mark.slow
def test_two_clusters_race_to_resume(ray_runtime, tmp_path):
    storage = f"file://{tmp_path}/store"
    counter, marker = str(tmp_path / "counter"), str(tmp_path / "marker")
    workflow.init(storage)
    ids = [f"crace-{r:02d}" for r in range(ROUNDS)]
    for wid in ids:
        with pytest.raises(workflow.WorkflowExecutionError):
            workflow.run(tasks.fail_then_slow.bind(counter, wid, marker), workflow_id=wid)
    open(marker, "w").close()

    env = dict(os.environ, RAY_AUTH_MODE="disabled")
    env.pop("RAY_ADDRESS", None)
    drivers = []
    try:
        for n in range(2):  # one after the other: two local Rays starting at once can pick one port
            drivers.append(_start(storage, env, tmp_path / f"driver{n}.err"))
            assert _answer(drivers[-1]).startswith("READY")
        for wid in ids:
            for driver in drivers:  # both get the order within microseconds of each other
                driver.stdin.write(f"resume {wid}\n")
                driver.stdin.flush()
            answers = sorted(_answer(driver).split()[0] for driver in drivers)
            assert answers == ["OK", "RUNNING"], (wid, answers)
    finally:
        for driver in drivers:
            driver.stdin.close()
            driver.wait(timeout=60)

    runs = open(counter).read().split()
    for wid in ids:
        assert runs.count(wid) == 2, f"{wid} ran {runs.count(wid)} times (1 failure + 1 resume expected)"
        assert workflow.get_output(wid) == wid
