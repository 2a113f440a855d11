"""Two driver processes resume the same workflow at once: exactly one drives it, every time."""

import os
import subprocess
import sys

import pytest
import ray

import engine as workflow
from engine.api._init import context
from engine.store._sync import run_sync
from replay import TaskStarted, read_events
from tests.engine import tasks

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROUNDS = 20


def _answer(driver) -> str:
    """The driver's next answer word, past any line Ray itself writes to a driver's stdout
    (the raylet's warnings reach every driver, log_to_driver or not)."""
    while True:
        line = driver.stdout.readline()
        if not line or line.split()[0] in ("OK", "RUNNING", "ERROR"):
            return line.split()[0] if line else "EOF"


def _started(driver):
    line = driver.stdout.readline()
    assert line.startswith("READY"), line + driver.stderr.read()[-2000:]


@pytest.mark.slow
def test_two_drivers_race_to_resume(local, tmp_path):
    counter, marker = str(tmp_path / "counter"), str(tmp_path / "marker")
    ids = [f"race-{tmp_path.name[-6:]}-{r:02d}" for r in range(ROUNDS)]
    for wid in ids:
        with pytest.raises(workflow.WorkflowExecutionError):
            workflow.run(tasks.fail_then_slow.bind(counter, wid, marker), workflow_id=wid)
    open(marker, "w").close()

    env = dict(os.environ, RAY_AUTH_MODE="disabled", RAY_ADDRESS=ray.get_runtime_context().gcs_address)
    drivers = [subprocess.Popen([sys.executable, "-m", "tests.engine.race_driver", local["url"]], cwd=ROOT,
                                env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True) for _ in range(2)]
    try:
        for driver in drivers:
            _started(driver)
        for wid in ids:
            for driver in drivers:  # both get the order within microseconds of each other
                driver.stdin.write(f"resume {wid}\n")
                driver.stdin.flush()
            answers = sorted(_answer(driver) for driver in drivers)
            assert answers in (["OK", "RUNNING"], ["OK", "OK"]), answers
            if answers == ["OK", "OK"]:
                pytest.fail(f"{wid}: both drivers reported success; only one may drive it")
    finally:
        for driver in drivers:
            driver.stdin.close()
            driver.wait(timeout=30)

    runs = open(counter).read().split()
    for wid in ids:
        assert runs.count(wid) == 2, f"{wid} ran {runs.count(wid)} times (1 failure + 1 resume expected)"
        assert workflow.get_output(wid) == wid
        starts = run_sync(_starts(wid))
        assert starts == 2, f"{wid}: {starts} TaskStarted events"


async def _starts(workflow_id):
    return len([e async for _s, e in read_events(context().storage, workflow_id) if isinstance(e, TaskStarted)])
