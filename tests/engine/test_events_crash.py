"""kill -9 of a driver during a 4 s sleep; resumed 5 s later, the sleep fires at once (issue 12)."""

import asyncio
import os
import signal
import subprocess
import sys
import time

import pytest

import engine as workflow
from replay import TaskCompleted, TimerSet, read_events
from storage_backends import open_storage

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _events(url, workflow_id):
    async def read():
        storage = open_storage(url)
        try:
            return [e async for _s, e in read_events(storage, workflow_id)]
        finally:
            await storage.close()
    return asyncio.run(read())


def test_driver_killed_mid_sleep_resumes_after_the_deadline_at_once(local, tmp_path):
    """ray.workflow 2.47 computed the deadline in a task of its own (``end_time``) and slept in
    another (``get_message``), holding a worker; its checkpointed deadline survived a crash too,
    but only once that first task had finished. Here the deadline is in the log from the start."""
    url, wid = f"file://{tmp_path}/store", "sleepy"
    env = dict(os.environ, RAY_AUTH_MODE="disabled")
    env.pop("RAY_ADDRESS", None)
    driver = subprocess.Popen([sys.executable, "-m", "tests.engine.events_driver", url, wid], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180
        while not [e for e in _events(url, wid) if isinstance(e, TimerSet)]:
            assert driver.poll() is None, driver.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "the driver never started sleeping"
            time.sleep(0.1)
        os.kill(driver.pid, signal.SIGKILL)  # mid-sleep: the 4 s are not over
        out, _err = driver.communicate(timeout=60)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert driver.returncode == -9 and "RESULT" not in out
    first = next(e for e in _events(url, wid) if isinstance(e, TimerSet))
    time.sleep(5)  # past the deadline by about a second
    assert not [e for e in _events(url, wid) if isinstance(e, TaskCompleted)]  # nobody fired it: a real crash

    workflow.init(url)  # this cluster takes it on by itself (the dead one's lease lapsed with it), or resume does
    assert workflow.get_status(wid) in (workflow.RUNNING, workflow.RESUMABLE)
    assert workflow.resume(wid)["value"] is None
    timers = [e for e in _events(url, wid) if isinstance(e, TimerSet)]
    assert [(t.attempt, t.deadline) for t in timers] == [(1, first.deadline), (2, first.deadline)]
    assert timers[1].ts > first.deadline  # resumed after the deadline, with it: it fired at once
    fired = next(e for e in _events(url, wid) if isinstance(e, TaskCompleted) and e.task_id == "engine.sleep")
    assert fired.attempt == 2 and fired.ts >= first.deadline
