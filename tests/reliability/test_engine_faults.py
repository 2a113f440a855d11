"""Faults under the engine: the manager dies, the disk fills up or is read-only, S3 misbehaves,
a log is torn. The session's Ray cluster drives everything; each test has a storage of its own.

Promises: a lost manager is restarted and takes its workflows on, so a driver waiting on one
gets its output, and later calls reach it with no new ``init``; a failing storage is a
WorkflowStorageError naming the workflow and the path (RESUMABLE, nothing durable lost), and a
resume once it works again finishes without re-running what was durable; under 10% S3 faults
every workflow completes or is cleanly RESUMABLE, never a false "another driver" conflict.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
import uuid

import pytest
import ray

import engine as workflow
from engine.api._init import context
from engine.graph._build import build_graph
from engine.store._sync import run_sync
from replay import TaskStatus, load_state
from storage_backends import StorageURLError, LogCorruptedError, StorageIOError
from tests.engine import tasks
from tests.reliability import faulty_tasks
from tests.reliability._figures import FULL, count
from tests.reliability._tmpfs import tmpfs  # noqa: F401 - a fixture
from tests.reliability.fault_proxy import FaultProxy
from tests.replay.logs import SCENARIOS, write_log

BOUND_S = 180  # for the engine to get somewhere; a bound for a hang, not a speed requirement


def _wait_for(condition, what: str):
    deadline = time.monotonic() + BOUND_S
    while not (value := condition()):
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.05)
    return value


def _in_thread(call):
    """Run ``call`` in a thread; returns a dict that gets "value" or "error", and the thread."""
    out: dict = {}

    def target():
        try:
            out["value"] = call()
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            out["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return out, thread


def _status(workflow_id: str):
    try:
        return workflow.get_status(workflow_id)
    except workflow.WorkflowNotFoundError:  # not submitted yet
        return None


def _manager_pid() -> int:
    """The pid of the live manager (after a list_all, which reaches a new one if it died)."""
    workflow.list_all()
    return ray.get(context().manager.__ray_call__.remote(lambda self: os.getpid()))


# --- fault 2: the manager dies -------------------------------------------------------------------

def test_manager_killed_while_run_waits_the_driver_gets_the_output(ray_runtime, tmp_path, wid):
    """The manager's process is killed while ``workflow.run`` waits: Ray restarts it, it takes the
    workflow on, and the waiting call returns the output (no error, no resume, no new init)."""
    workflow.init(f"file://{tmp_path}/store")
    gate = str(tmp_path / "gate")
    out, thread = _in_thread(lambda: workflow.run(tasks.gated.bind(7, gate), workflow_id=wid))
    _wait_for(lambda: _status(wid) == workflow.RUNNING, "the workflow runs")
    old = _manager_pid()
    os.kill(old, signal.SIGKILL)
    _wait_for(lambda: _manager_pid() != old and _status(wid) == workflow.RUNNING, "the new manager drives it")
    assert (wid, workflow.RUNNING) in workflow.list_all()
    open(gate, "w").close()
    thread.join(BOUND_S)
    assert out.get("value") == 7, out
    assert workflow.get_status(wid) == workflow.SUCCESSFUL
    count("manager processes killed (driver recovered without init)")


def test_calls_after_an_unseen_manager_death_reach_a_new_manager(ray_runtime, tmp_path, wid):
    """The manager dies while nothing waits on it: the next call of each kind still works."""
    workflow.init(f"file://{tmp_path}/store")
    assert workflow.run(tasks.add.bind(1, 2), workflow_id=wid) == 3
    for call in (lambda: workflow.list_all(), lambda: workflow.run(tasks.add.bind(2, 2), workflow_id=wid + "-b"),
                 lambda: workflow.get_output(wid), lambda: workflow.cancel(wid + "-b")):
        pid = _manager_pid()
        os.kill(pid, signal.SIGKILL)
        _wait_for(lambda: not _alive(pid), "the manager process is gone")
        call()
        count("manager processes killed (driver recovered without init)")
    assert dict(workflow.list_all()) == {wid: workflow.SUCCESSFUL, wid + "-b": workflow.SUCCESSFUL}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


# --- fault 5: a full disk, a read-only one -------------------------------------------------------

@pytest.mark.parametrize("what_fills", ["log append", "output blob"])
def test_a_full_disk_interrupts_the_workflow_and_a_resume_finishes_it(ray_runtime, tmpfs, tmp_path, wid,
                                                                      what_fills):
    store = os.path.join(tmpfs.path, "store")
    workflow.init(f"file://{store}")
    side = str(tmp_path / "side")  # outside the tmpfs
    if what_fills == "log append":
        node, expected = 0, 400
        for i in range(400):
            node = workflow.options(task_id=f"s{i:03d}")(faulty_tasks.step).bind(node, side, f"s{i:03d}")
        # Room for the submission (its DAG is a blob), the 400 tasks' scheduled events (pipelined
        # at once, ~60 KiB) and the completions of about half of them.
        leave = len(build_graph(node).to_bytes()) + 96 * 1024
    else:
        node, expected, leave = b"", None, 700 * 1024  # 200 KiB blobs: the fourth one does not fit
        for i in range(8):
            node = workflow.options(task_id=f"g{i}")(faulty_tasks.grow).bind(node, 200 * 1024, side, f"g{i}")
    filler = tmpfs.fill(leave)
    with pytest.raises(workflow.WorkflowStorageError) as info:
        workflow.run(node, workflow_id=wid)
    error = info.value
    message = str(error)
    assert wid in message and store in message and "No space left on device" in message, message
    assert "RESUMABLE" in message and "Nothing durable was lost" in message
    assert isinstance(error, workflow.WorkflowError) and error.workflow_id == wid and store in error.path
    assert workflow.get_status(wid) == workflow.RESUMABLE
    durable = {t for t, task in run_sync(load_state(context().storage, wid)).tasks.items()
               if task.status is TaskStatus.SUCCESSFUL}
    ran_before = faulty_tasks.lines(side)
    assert durable, "nothing was durable before the disk filled up: the test proves nothing"

    os.remove(filler)  # space returns
    result = workflow.resume(wid)
    assert result == expected if expected is not None else len(result) == 200 * 1024
    again = faulty_tasks.lines(side)[len(ran_before):]
    assert not durable & set(again), sorted(durable & set(again))
    count("disk full: workflows interrupted and resumed")


def test_a_full_disk_before_the_submission_is_the_storage_error_and_leaves_no_workflow(ray_runtime, tmpfs, wid):
    """workflow.run hands its submission over unwritten; the manager's append of it fails: run
    raises the storage's own error (as a driver's append of it did), naming the path and saying
    nothing was appended, and there is no workflow; run again once there is room, it runs."""
    store = os.path.join(tmpfs.path, "store")
    workflow.init(f"file://{store}")
    assert workflow.run(tasks.add.bind(1, 1), workflow_id=wid + "-room") == 2
    filler = tmpfs.fill(0)
    with pytest.raises(StorageIOError) as info:
        workflow.run(tasks.add.bind(2, 2), workflow_id=wid)
    message = str(info.value)
    assert "No space left on device" in message and store in message and "nothing was appended" in message
    with pytest.raises(ValueError, match="does not exist"):
        workflow.get_status(wid)
    os.remove(filler)
    assert workflow.run(tasks.add.bind(2, 2), workflow_id=wid) == 4


def test_a_read_only_store_is_a_clear_error_at_init(ray_runtime, tmpfs, wid):
    store = os.path.join(tmpfs.path, "store")
    # A store with a workflow in it, written and closed (a file open for writing would keep
    # the remount from making it read-only).
    asyncio.run(write_log(f"file://{store}", {}, wid, SCENARIOS["failed"](wid).events))
    tmpfs.remount("ro")
    try:
        with pytest.raises(StorageIOError) as info:
            workflow.init(f"file://{store}")
        assert store in str(info.value) and "Read-only file system" in str(info.value)
        assert "ray-durable replay" in str(info.value)  # how to read it anyway
    finally:
        tmpfs.remount("rw")
    count("read-only stores refused at init")


def test_blank_and_file_storage_urls_are_errors_at_init(ray_runtime, tmp_path, monkeypatch):
    """Fault 6: "" is not the default store, "   " is not a directory named by spaces, a file
    is not a store; each is a clear error at init, and nothing is created."""
    monkeypatch.chdir(tmp_path)
    for blank in ("", "   ", "file://", "file://  "):
        with pytest.raises(StorageURLError, match="names no directory|is blank"):
            workflow.init(blank)
    assert os.listdir(tmp_path) == []
    a_file = tmp_path / "a-file"
    a_file.write_text("not a store")
    with pytest.raises(StorageURLError, match=f"{a_file} is a file, not a directory"):
        workflow.init(str(a_file))
    with pytest.raises(StorageURLError, match="whitespace"):
        workflow.init(f" {tmp_path}/x")
    count("bad inputs tried", 7)


# --- fault 4: a torn tail through the engine -------------------------------------------------------

def test_get_output_of_a_torn_workflow_says_resume_not_cannot_be_resumed(ray_runtime, tmp_path, wid):
    workflow.init(f"file://{tmp_path}/store")
    assert workflow.run(tasks.add.bind(tasks.add.bind(1, 2), 3), workflow_id=wid) == 6
    path = os.path.join(context().storage.root, wid, "events.log")
    os.truncate(path, os.path.getsize(path) - 1)  # the last batch (the success) is torn
    assert workflow.get_status(wid) == workflow.RESUMABLE
    with pytest.raises(workflow.WorkflowError) as info:
        workflow.get_output(wid)
    message = str(info.value)
    assert "cannot be resumed" not in message and "RESUMABLE" in message and f"resume('{wid}')" in message
    assert workflow.resume(wid) == 6


def test_resume_never_proceeds_past_damage_on_s3(ray_runtime, s3_admin, moto_server, wid):
    bucket = f"dmg-{uuid.uuid4().hex[:12]}"
    s3_admin.create_bucket(Bucket=bucket)
    workflow.init(f"s3://{bucket}/wf", storage_options={"endpoint_url": moto_server})
    marker = f"/tmp/never-{uuid.uuid4().hex}"
    with pytest.raises(workflow.WorkflowExecutionError):
        workflow.run(tasks.fails_until.bind(marker, tasks.add.bind(1, 2)), workflow_id=wid)
    keys = [o["Key"] for o in s3_admin.list_objects_v2(Bucket=bucket, Prefix=f"wf/logs/{wid}/")["Contents"]]
    middle = keys[len(keys) // 2]
    body = s3_admin.get_object(Bucket=bucket, Key=middle)["Body"].read()
    s3_admin.put_object(Bucket=bucket, Key=middle, Body=body[:-1] + bytes([body[-1] ^ 1]))
    for call in (lambda: workflow.resume(wid), lambda: workflow.get_status(wid),
                 lambda: workflow.run(tasks.add.bind(1, 2), workflow_id=wid)):
        with pytest.raises(LogCorruptedError, match=middle):
            call()
    after = [o["Key"] for o in s3_admin.list_objects_v2(Bucket=bucket, Prefix=f"wf/logs/{wid}/")["Contents"]]
    assert after == keys  # nothing was appended past the damage
    count("logs damaged: resume refused (S3)")


# --- S3 faults under the engine ---------------------------------------------------------------------

def test_ten_percent_s3_faults_complete_or_resumable_never_a_false_conflict(ray_runtime, s3_admin, moto_server,
                                                                           tmp_path):
    """Fault 1 through the engine: 9-task workflows, one driver, 10% of every S3 request of the
    driver, the manager and the workers faulted (errors, resets before and after forwarding,
    delays). Each completes or is cleanly RESUMABLE (a storage error); none is told another
    driver took it over. Then, faults off, the RESUMABLE ones resume, and no task whose
    completion was durable runs again."""
    n = 40 if FULL else 10
    bucket = f"faults-{uuid.uuid4().hex[:12]}"
    s3_admin.create_bucket(Bucket=bucket)
    side = str(tmp_path / "side")
    with FaultProxy(moto_server, rate=0.10, seed=len(os.listdir(tmp_path))) as proxy:
        workflow.init(f"s3://{bucket}/wf", storage_options={"endpoint_url": proxy.url})
        ids = [f"f-{i:02d}" for i in range(n)]
        outcomes = {}
        for wid in ids:  # one at a time, like the probe that found the fault
            leaves = [workflow.options(task_id=f"leaf{j}")(faulty_tasks.step).bind(j, side, f"{wid}/leaf{j}")
                      for j in range(7)]
            chain = workflow.options(task_id="mid")(faulty_tasks.step).bind(tasks.total.bind(leaves), side,
                                                                             f"{wid}/mid")
            try:
                outcomes[wid] = ("ok", workflow.run(chain, workflow_id=wid))
            except workflow.WorkflowRunningError as exc:
                pytest.fail(f"false conflict: {exc}")
            except (workflow.WorkflowStorageError, workflow.WorkflowInterruptedError) as exc:
                outcomes[wid] = ("interrupted", exc)
            except Exception as exc:  # a driver-side storage error that names itself
                assert "S3" in str(exc), repr(exc)
                outcomes[wid] = ("driver", exc)
        injected = proxy.total_injected
        proxy.rate = 0
        statuses = dict(workflow.list_all())
        durable = {}
        for wid in ids:
            state = run_sync(load_state(context().storage, wid))
            durable[wid] = {t for t, task in state.tasks.items() if task.status is TaskStatus.SUCCESSFUL}
            if outcomes[wid][0] == "ok":
                assert statuses[wid] == workflow.SUCCESSFUL
            else:
                assert statuses.get(wid) in (workflow.RESUMABLE, None), (wid, statuses.get(wid), outcomes[wid])
        ran = faulty_tasks.lines(side)
        expected = sum(j + 1 for j in range(7)) + 1
        for wid in ids:
            if statuses.get(wid) == workflow.RESUMABLE:
                assert workflow.resume(wid) == expected
            elif statuses.get(wid) is None:  # its submission never landed: run it again
                assert outcomes[wid][0] == "driver"
        again = faulty_tasks.lines(side)[len(ran):]
        for wid in ids:
            rerun = {line.split("/", 1)[1] for line in again if line.startswith(wid + "/")}
            assert not rerun & durable[wid], (wid, rerun & durable[wid])
            if outcomes[wid][0] == "ok":
                assert outcomes[wid][1] == expected
    count("s3: faults injected under the engine", injected)
    count("s3: workflows run under 10% faults", n)
    count("s3: workflows interrupted by faults, then resumed",
          sum(1 for o in outcomes.values() if o[0] != "ok"))
