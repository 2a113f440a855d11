"""The crash matrix: a 50-task workflow, a real SIGKILL at a random instant, a fresh process resumes.

Each seed picks what dies (the driver's whole process group, its Ray cluster with it; or only
the manager actor's process), the storage (local disk or S3 on moto), and when (uniformly
within the run). Then a fresh driver process resumes. Every run must give:

* the correct output;
* no task whose completion was durable at the kill ran again;
* the tasks that ran twice are exactly those in flight at the kill (ran before it, their
  completion not durable), and every other task ran once;
* a log that ``replay verify`` finds clean.

``make test`` runs 2 seeds (each victim, each storage); ``make test-reliability`` runs 100.
"""

from __future__ import annotations

import asyncio
import os
import queue
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import pytest
import ray  # first: psutil comes from Ray's own third-party files (as in tests/engine)
import psutil  # noqa: E402,I001

from replay import TaskStatus, load_state
from replay._verify import verify
from storage_backends import open_storage
from tests.reliability import crash_workflow
from tests.reliability._figures import count, seeds

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WINDOW_S = 2.5  # the kill falls uniformly in this long after the workflow is claimed (~its run time)
BOUND_S = 240  # for a process to get somewhere; a bound for a hang, not a speed requirement


class Lines:
    """A child's stdout, line by line, readable with a bound."""

    def __init__(self, process: subprocess.Popen):
        self.process = process
        self.seen: list[str] = []
        self._queue: queue.Queue = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        for line in self.process.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def until(self, prefix: str) -> str:
        deadline = time.monotonic() + BOUND_S
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=1)
            except queue.Empty:
                continue
            if line is None:
                break
            self.seen.append(line)
            if line.startswith(prefix):
                return line
        raise AssertionError(f"no {prefix!r} line; saw {self.seen}; stderr: {self._stderr()}")

    def rest(self) -> list[str]:
        out = []
        while True:
            line = self._queue.get(timeout=BOUND_S)
            if line is None:
                return out
            out.append(line)

    def _stderr(self) -> str:
        if self.process.poll() is None:
            return "(still running)"
        return self.process.stderr.read()[-3000:]


def _env(**extra: str) -> dict:
    env = dict(os.environ, RAY_AUTH_MODE="disabled", **extra)
    if "RAY_ADDRESS" not in extra:
        env.pop("RAY_ADDRESS", None)
    return env


def _bury(processes: list[psutil.Process]) -> None:
    """Wait for every process of the dead cluster to be gone (killing stragglers), so no task of
    it can still write to the side file once the test reads it."""
    _gone, alive = psutil.wait_procs(processes, timeout=30)
    for proc in alive:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=30)


def _lines(path: str) -> list[str]:
    return open(path).read().split() if os.path.exists(path) else []


@pytest.mark.parametrize("seed", seeds(reduced=[1, 2], full=100))  # 1: manager, local; 2: driver, S3
def test_crash_matrix(ray_runtime, tmp_path, seed, moto_server, s3_admin):
    rng = random.Random(seed)
    victim = ("driver", "manager")[seed % 2]
    backend = ("local", "local", "s3")[seed % 3]
    wid = f"crash-{seed}"
    side = str(tmp_path / "side")
    if backend == "local":
        storage_url, options, extra = f"file://{tmp_path}/store", {}, []
    else:
        bucket = f"crash-{uuid.uuid4().hex[:12]}"
        s3_admin.create_bucket(Bucket=bucket)
        storage_url, options, extra = f"s3://{bucket}/wf", {"endpoint_url": moto_server}, [moto_server]
    temp_dir = tempfile.mkdtemp(prefix="rdc-", dir="/tmp")  # short: Ray's socket paths live under it
    driver = subprocess.Popen(
        [sys.executable, "-m", "tests.reliability.crash_workflow", "run", storage_url, wid, side, temp_dir,
         *extra], cwd=REPO, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True)  # its own process group: the driver, its GCS and raylet
    lines = Lines(driver)
    try:
        manager_pid = int(lines.until("MANAGER").split()[1])
        lines.until("STARTED")
        time.sleep(rng.uniform(0, WINDOW_S))
        cluster = [psutil.Process(driver.pid), *psutil.Process(driver.pid).children(recursive=True)]
        if victim == "driver":
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait(timeout=BOUND_S)
        else:
            try:
                os.kill(manager_pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            # What was durable, and what had run, at the kill: Ray restarts the manager, which
            # takes the workflow on by itself (seconds later) and may finish it in this cluster.
            ran_at_kill = set(_lines(side))
            durable_at_kill = asyncio.run(_durably_done(storage_url, options, wid))
            end = lines.rest()  # the driver gets the output (healed) or an error, and exits
            driver.wait(timeout=BOUND_S)
            assert driver.returncode in (0, 3), (driver.returncode, end, driver.stderr.read()[-3000:])
            if driver.returncode == 3:  # fault 2: an error naming the workflow, RESUMABLE
                # (All of it: the raylet's own warnings can land inside the driver's line.)
                said = " ".join(end).partition("INTERRUPTED")[2]
                assert wid in said and "RESUMABLE" in said, (end, driver.stderr.read()[-3000:])
        _bury(cluster)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait()
        shutil.rmtree(temp_dir, ignore_errors=True)
    count(f"crash matrix: SIGKILLs of the {victim}{' process group' if victim == 'driver' else ''}")

    before = _lines(side)
    durable = asyncio.run(_durably_done(storage_url, options, wid))
    resumer = subprocess.run(
        [sys.executable, "-m", "tests.reliability.crash_workflow", "resume", storage_url, wid, side, "-",
         *extra], cwd=REPO, env=_env(RAY_ADDRESS=ray.get_runtime_context().gcs_address),
        capture_output=True, text=True, timeout=BOUND_S)
    assert resumer.returncode == 0, resumer.stdout + resumer.stderr[-3000:]
    assert f"RESULT {crash_workflow.EXPECTED}" in resumer.stdout.splitlines()

    after = _lines(side)
    assert after[:len(before)] == before
    first, again = set(before), after[len(before):]
    assert len(again) == len(set(again)), f"a task ran twice in the resume: {again}"
    assert not durable & set(again), f"durably completed tasks ran again: {sorted(durable & set(again))}"
    in_flight = first - durable  # ran before the kill, completion not durable
    assert set(again) == set(crash_workflow.TASK_IDS) - durable
    twice = {t for t in crash_workflow.TASK_IDS if (before + again).count(t) > 1}
    if victim == "manager" and driver.returncode == 0:
        # Healed in the first cluster: nothing durable at the kill ran again; what ran twice was
        # not durable then (in flight, or handed to a worker as the manager died), and ran at
        # most twice.
        assert not twice & durable_at_kill, (twice, durable_at_kill)
        assert all((before + again).count(t) <= 2 for t in crash_workflow.TASK_IDS), before + again
        count("crash matrix: tasks in flight at a manager kill, re-run by the healed manager",
              len(twice & ran_at_kill))
    else:
        assert twice == in_flight, (twice, in_flight)
        assert all(before.count(t) == 1 for t in first), "a task ran twice before the kill"
    verdicts = asyncio.run(_verify(storage_url, options, wid))
    assert verdicts == [], verdicts
    count("crash matrix: tasks re-run (in flight at the kill)", len(twice))
    count("crash matrix: tasks durable at the kill (none re-run)", len(durable))


async def _durably_done(url: str, options: dict, wid: str) -> set[str]:
    storage = open_storage(url, **options)
    try:
        state = await load_state(storage, wid)
    finally:
        await storage.close()
    return {t for t, task in state.tasks.items()
            if task.status is TaskStatus.SUCCESSFUL and task.output is not None}


async def _verify(url: str, options: dict, wid: str) -> list:
    storage = open_storage(url, **options)
    try:
        (verdict,) = await verify(storage, [wid])
    finally:
        await storage.close()
    return [str(p) for p in verdict.problems]
