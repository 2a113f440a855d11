"""Crash recovery with real kill -9s: of a driver (and its cluster), and of task workers."""

import os
import subprocess
import sys

import pytest

import engine as workflow
from tests.engine import tasks

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _driver(mode, storage, workflow_id, counter, flag, timeout=180, **extra_env):
    env = dict(os.environ, RAY_AUTH_MODE="disabled", **extra_env)
    env.pop("RAY_ADDRESS", None)
    return subprocess.run(
        [sys.executable, "-m", "tests.engine.crash_driver", mode, storage, workflow_id, counter, flag],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
    )


def test_driver_killed_mid_chain_resumes_in_a_new_process_and_runtime_env(tmp_path):
    storage = f"file://{tmp_path}/store"
    counter, flag = str(tmp_path / "counter"), str(tmp_path / "killed")
    first = _driver("run", storage, "chain20", counter, flag)
    assert first.returncode == -9, (first.returncode, first.stdout, first.stderr[-3000:])
    assert "RESULT" not in first.stdout
    assert os.path.exists(flag)

    # The log records the env var's name, not its value: this driver supplies it from its own
    # environment (it has no job runtime env).
    second = _driver("resume", storage, "chain20", counter, flag, RD_WF_ENV="from-resumer")
    assert second.returncode == 0, second.stderr[-3000:]
    # The dead driver's cluster is gone (its address on this machine answers no more), so its
    # lease no longer holds: the new cluster's manager takes the workflow on by itself at start
    # (RUNNING) or, if asked first, it reads RESUMABLE; either way resume() returns the result.
    assert "STATUS RUNNING" in second.stdout or "STATUS RESUMABLE" in second.stdout
    assert "RESULT 20" in second.stdout
    notes = [line.split(":") for line in open(counter).read().split()]
    runs = [index for index, _env in notes]
    for index in range(1, 10):
        assert runs.count(str(index)) == 1, f"task {index} ran {runs.count(str(index))} times"
    for index in range(10, 21):
        assert runs.count(str(index)) >= 1
    # the tasks ran in the recorded runtime env: its value from the first driver, then the resumer
    assert {env for index, env in notes if int(index) < 10} == {"from-submission"}
    assert {env for index, env in notes if int(index) > 10} == {"from-resumer"}


def test_task_that_kills_its_worker_fails_then_resumes(local, wid, tmp_path):
    marker, calls = str(tmp_path / "marker"), str(tmp_path / "calls")
    dag = tasks.collect.bind(tasks.kill_worker_until.bind(marker, calls), tasks.add.bind(1, 1))
    with pytest.raises(workflow.WorkflowExecutionError) as info:
        workflow.run(dag, workflow_id=wid)
    assert info.value.task_id == tasks.tid("kill_worker_until")
    assert workflow.get_status(wid) == workflow.FAILED
    assert tasks.count(calls) == 4  # the first attempt and max_retries=3 retries
    meta = workflow.get_metadata(wid, task_id=tasks.tid("kill_worker_until"))
    assert meta["status"] == "FAILED" and meta["attempts"] == 4

    open(marker, "w").close()
    expected = {"args": ["survived", 2], "kwargs": {}}
    assert workflow.resume(wid) == expected
    assert tasks.count(calls) == 5
    assert workflow.get_status(wid) == workflow.SUCCESSFUL
    assert workflow.resume(wid) == expected  # finished: nothing runs again
    assert tasks.count(calls) == 5


def _handover_driver(mode, storage, *ids, timeout=240, **extra_env):
    env = dict(os.environ, RAY_AUTH_MODE="disabled", **extra_env)
    env.pop("RAY_ADDRESS", None)
    return subprocess.run([sys.executable, "-m", "tests.engine.handover_driver", mode, storage, *ids],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("mode", ["lost", pytest.param("async", marks=pytest.mark.slow)])
def test_a_driver_killed_after_run_async_leaves_a_workflow_the_next_cluster_runs_by_itself(tmp_path, mode):
    """kill -9 of a driver (and its own cluster) just after ``run_async`` made the submission
    durable: ``lost``, before the hand-over to the manager was sent (the log holds the
    submission only); ``async``, right after ``run_async`` returned (whether or not the
    manager got it). The next cluster of the application runs it with no ``resume``."""
    storage = f"file://{tmp_path}/store"
    first = _handover_driver(mode, storage, "w1")
    assert first.returncode == -9, (first.returncode, first.stdout, first.stderr[-3000:])
    if mode == "lost":
        from engine.store._sync import run_sync
        from replay import WorkflowStatus, load_state
        from storage_backends import open_storage

        state = run_sync(load_state(open_storage(storage), "w1"))
        assert state.status is WorkflowStatus.PENDING and state.submission.owner  # never claimed
    second = _handover_driver("await", storage, "w1")
    assert second.returncode == 0, second.stderr[-3000:]
    assert f"RESULT w1 {21 if mode == 'lost' else 42}" in second.stdout


def test_a_workflow_queued_on_a_cluster_that_died_is_run_by_the_next_cluster(tmp_path):
    """``max_running_workflows=1``: one workflow runs, a second is queued (PENDING, never
    claimed); kill -9 of the driver and its cluster. The next cluster takes both on by itself."""
    storage = f"file://{tmp_path}/store"
    first = _handover_driver("queued", storage, "running", "queued")
    assert first.returncode == -9 and "QUEUED" in first.stdout, (first.returncode, first.stdout,
                                                                  first.stderr[-3000:])
    open(tmp_path / "gate", "w").close()
    second = _handover_driver("await", storage, "running", "queued")
    assert second.returncode == 0, second.stderr[-3000:]
    assert "RESULT running 1" in second.stdout and "RESULT queued 5" in second.stdout


@pytest.mark.slow
def test_a_cluster_of_another_application_on_the_same_port_leaves_the_workflows_alone(tmp_path):
    """A seat is a cluster's address and the manager's name: a new cluster started on the dead
    one's port sits in the same seat. Of another application, it must not run the dead
    cluster's workflows (a lost hand-over, here); of the same application, it takes them on at
    once (the hand-over went to a manager that is gone)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    storage = f"file://{tmp_path}/store"
    first = _handover_driver("lost-long-ago", storage, "w1", RAY_GCS_SERVER_PORT=port)
    assert first.returncode == -9, (first.returncode, first.stdout, first.stderr[-3000:])
    other = _handover_driver("untouched", storage, "w1", RAY_GCS_SERVER_PORT=port, RAY_DURABLE_APPLICATION="other")
    assert other.returncode == 0 and "UNTOUCHED" in other.stdout, other.stderr[-3000:]
    same = _handover_driver("await", storage, "w1", RAY_GCS_SERVER_PORT=port)
    assert same.returncode == 0 and "RESULT w1 21" in same.stdout, same.stderr[-3000:]
