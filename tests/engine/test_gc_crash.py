"""A gc cut short: ``kill -9`` of a real ``ray-durable gc`` process, then a rerun finishes it.

Also each crash point of a delete, reached step by step (engine/store/_offline.py): after the
index record (tombstone and deletion mark), after the FAILED log's fence, after the log is gone
but not its blobs, and (S3) with the log's first batches gone. At every point no listing shows a
half-deleted workflow, and the next gc leaves storage consistent: no log, no blob, no mark, and a
status index equal to one rebuilt from the logs. Storage only: no Ray.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from engine.store import _index
from engine.store._offline import finish_delete
from engine.store._retention import collect
from engine.store._status import list_workflows
from replay import (
    PayloadRef,
    TaskCompleted,
    TaskFailed,
    TaskScheduled,
    TaskStarted,
    WorkflowFailed,
    WorkflowRunStarted,
    WorkflowStatus,
    WorkflowSubmitted,
    WorkflowSucceeded,
    append_events,
    load_state,
)
from storage_backends import open_storage


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):
    if request.param == "local":
        url, options = str(tmp_path / "store"), {}
    else:
        url, options = request.getfixturevalue("s3_url"), request.getfixturevalue("s3_options")
    return request.param, url, options


async def write_finished(storage, workflow_id: str, failed: bool = False, blobs: int = 3) -> None:
    """A finished workflow as the engine leaves it: a log, and a blob per task output."""
    t = time.time() - 86_400
    events = [WorkflowSubmitted(ts=t, workflow_id=workflow_id, dag=PayloadRef(size=1, digest="00", inline=b"x")),
              WorkflowRunStarted(ts=t, run_id="r")]
    for i in range(blobs):
        name = f"out-{i}-1"
        await storage.put_blob(workflow_id, name, os.urandom(2048))
        ref = PayloadRef(size=2048, digest="11", blob=name)
        events += [TaskScheduled(ts=t, task_id=f"t{i}", name="m.f"), TaskStarted(ts=t, task_id=f"t{i}"),
                   TaskCompleted(ts=t, task_id=f"t{i}", output=ref)]
    if failed:
        events += [TaskScheduled(ts=t, task_id="bad", name="m.g"), TaskStarted(ts=t, task_id="bad"),
                   TaskFailed(ts=t, task_id="bad", error_type="E", message="m"),
                   WorkflowFailed(ts=t, task_id="bad", error_type="E", message="m")]
    else:
        events.append(WorkflowSucceeded(ts=t, output=events[-1].output))
    await append_events(storage, workflow_id, events, 0)


async def assert_nothing_half_visible(storage) -> list[str]:
    """Every workflow a listing shows reads whole: its log folds, and every blob it names is there."""
    rows = await list_workflows(storage)
    for row in rows:
        state = await load_state(storage, row.workflow_id)
        assert state.status is row.status
        for task in state.tasks.values():
            if task.output is not None and task.output.blob:
                await storage.get_blob(row.workflow_id, task.output.blob)
    return [row.workflow_id for row in rows]


async def assert_consistent(storage, ids) -> None:
    """Everything gone: no log, no blob, no deletion mark; the index equals a rebuilt one."""
    assert await storage.list_logs() == []
    for workflow_id in ids:
        assert await storage.list_blobs(workflow_id) == {}
    assert await _index.deletion_marks(storage) == {}
    live = await _index.load_entries(storage)
    await _index.rebuild(storage)
    assert await _index.load_entries(storage) == live == {}
    if hasattr(storage, "root"):
        assert not [n for n in os.listdir(storage.root) if n.startswith(".deleted-")]


def _gc_command(url, options):
    command = [sys.executable, "-m", "engine", "gc", "--storage", url]
    if options:
        command += ["--endpoint-url", options["endpoint_url"]]
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    return command, env


async def test_kill_9_in_the_middle_of_a_gc_then_a_rerun_finishes_it(store):
    _kind, url, options = store
    storage = open_storage(url, **options)
    ids = [f"w{i:03d}-{uuid.uuid4().hex[:4]}" for i in range(120)]
    try:
        for i, workflow_id in enumerate(ids):
            await write_finished(storage, workflow_id, failed=i % 3 == 0)
        command, env = _gc_command(url, options)
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        deadline = time.monotonic() + 120
        while len(await storage.list_logs()) == len(ids):  # until the first workflow is gone
            assert process.poll() is None, f"gc ended before it deleted anything: {process.stderr.read()}"
            assert time.monotonic() < deadline, "gc deleted nothing in 120s"
            time.sleep(0.005)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        assert process.returncode == -signal.SIGKILL
        left = await storage.list_logs()
        assert 0 < len(left) < len(ids), "the kill did not land in the middle of the gc"
        shown = await assert_nothing_half_visible(storage)
        assert set(shown) <= set(left)
        marks = await _index.deletion_marks(storage)
        rerun = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
        assert rerun.returncode == 0, rerun.stderr
        for workflow_id in marks:  # each delete the kill cut short is reported, as finished
            if workflow_id in left:
                assert workflow_id in rerun.stdout
        await assert_consistent(storage, ids)
    finally:
        await storage.close()


async def _begin(storage, workflow_id):
    state = await load_state(storage, workflow_id)
    await _index.append(storage, deleted=[workflow_id], deleting={workflow_id: state.start_time})
    return state


async def test_each_crash_point_of_a_delete(store):
    kind, url, options = store
    storage = open_storage(url, **options)
    try:
        a, b, c, d = (f"{x}-{uuid.uuid4().hex[:4]}" for x in "abcd")
        keep = f"keep-{uuid.uuid4().hex[:4]}"
        for workflow_id in (a, b, c, d, keep):
            await write_finished(storage, workflow_id, failed=workflow_id in (b, keep))
        await list_workflows(storage)  # index them
        # a: cut short right after the index record
        await _begin(storage, a)
        # b (FAILED): after the fence too: the log now ends CANCELED, still hidden
        state = await _begin(storage, b)
        await _index.claim(storage, b, state.next_seq)
        from replay import WorkflowCanceled

        await append_events(storage, b, [WorkflowCanceled(ts=time.time())], state.next_seq)
        # c: after the log went, before its blobs did (S3 deletes the batches, then the blobs)
        await _begin(storage, c)
        if kind == "local":
            await storage.delete(c)  # (atomic on local disk: a rename, then the removal)
            os.makedirs(os.path.join(storage.root, f".deleted-{c}-{uuid.uuid4().hex}", "blobs"))
        else:
            await _delete_s3_keys(storage, url, options, f"logs/{c}/")
        # d (S3): with the first batches of its log gone: it reads as damaged, and stays hidden
        await _begin(storage, d)
        if kind == "s3":
            await _delete_s3_keys(storage, url, options, f"logs/{d}/", first_only=True)
        shown = await assert_nothing_half_visible(storage)
        assert shown == [keep]
        assert set(await _index.deletion_marks(storage)) == {a, b, c, d}
        # a resume that won the race against a delete keeps its workflow: the mark goes, it is listed
        state = await _begin(storage, keep)
        await _index.claim(storage, keep, state.next_seq)
        await append_events(storage, keep, [WorkflowRunStarted(ts=time.time(), run_id="again")], state.next_seq)
        assert await finish_delete(storage, keep, state.start_time) is False
        assert [r.workflow_id for r in await list_workflows(storage)] == [keep]
        report = await collect(storage)
        assert sorted(i.workflow_id for i in report.items if i.action == "finished") == sorted([a, b, c, d])
        assert (await load_state(storage, keep)).status is WorkflowStatus.RUNNING  # RESUMABLE: untouched
        await storage.delete(keep)
        await _index.append(storage, deleted=[keep])
        await assert_consistent(storage, [a, b, c, d, keep])
    finally:
        await storage.close()


async def _delete_s3_keys(storage, url, options, under, first_only=False):
    import boto3

    bucket, _, prefix = url[len("s3://"):].partition("/")
    s3 = boto3.client("s3", endpoint_url=options["endpoint_url"], region_name="us-east-1")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/{under}").get("Contents", [])]
    assert keys
    for key in keys[:1] if first_only else keys:
        s3.delete_object(Bucket=bucket, Key=key)
