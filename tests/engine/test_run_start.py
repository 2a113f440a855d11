"""How a run starts: it loads what the log says is done, then claims the log in the same
append as the first tasks' scheduled events, and launches them once that is durable."""

import time

import pytest

import engine as workflow
from engine.store import _index
from engine.api._init import context
from engine.store._index import Entry
from engine.store._sync import run_sync
from replay import TaskStatus, decode_event, load_state
from storage_backends import BlobNotFoundError
from tests.engine import tasks


def _appends(workflow_id):
    """The log as appended: for each batch, its events' (type, task id) pairs."""
    async def read():
        return [[decode_event(r.data) for r in batch.records()]
                async for batch in context().storage.read_batches(workflow_id)]
    return [[(type(e).__name__, getattr(e, "task_id", None)) for e in batch] for batch in run_sync(read())]


def test_the_claim_and_the_first_tasks_are_one_append(backend, wid):
    leaves = [workflow.options(task_id=f"leaf-{i}")(tasks.add).bind(i, 1) for i in range(3)]
    fan_in = workflow.options(task_id="total")(tasks.describe).bind(*leaves)  # direct args: pipelined
    assert workflow.run(fan_in, workflow_id=wid) == {"args": [1, 2, 3], "kwargs": {}}
    appends = _appends(wid)
    assert appends[0] == [("WorkflowSubmitted", None)]
    assert appends[1] == [("WorkflowRunStarted", None)] + [("TaskScheduled", f"leaf-{i}") for i in range(3)]
    # The fan-in was pipelined right after the leaves were launched, in a later append.
    assert ("TaskScheduled", "total") in [event for batch in appends[2:] for event in batch]


def test_a_resume_that_cannot_load_writes_nothing(backend, wid, tmp_path):
    """A checkpoint the resume needs is gone: the resume fails naming it, and neither the log
    nor the status index changes (nothing is written before the claim)."""
    marker = str(tmp_path / "marker")
    dag = tasks.fails_until.bind(marker, tasks.big_output.bind(100_000))
    with pytest.raises(workflow.WorkflowExecutionError):
        workflow.run(dag, workflow_id=wid)
    storage = context().storage
    state = run_sync(load_state(storage, wid))
    blob = state.tasks[tasks.tid("big_output")].output.blob
    assert blob is not None
    run_sync(storage.delete_blob(wid, blob))
    open(marker, "w").close()
    with pytest.raises(BlobNotFoundError, match=blob):
        workflow.resume(wid)
    assert run_sync(storage.next_seq(wid)) == state.next_seq
    assert workflow.get_status(wid) == workflow.FAILED
    assert run_sync(_index.load_entries(storage)).get(wid) == Entry(state.last_seq, "FAILED")  # no claim


def test_a_resume_runs_what_the_dead_run_had_scheduled_as_a_new_attempt(fresh_backend, wid, kill_manager,
                                                                         tmp_path):
    """The manager dies while one task runs and the next is scheduled behind it. The new manager
    takes the workflow on by itself and runs both as new attempts: the dead run may have
    started either (short tasks report their start only with their outcome), and an attempt's
    number names its output blob."""
    gate = str(tmp_path / "gate")  # "first" runs until the manager is dead (no sleep to outlast)
    first = workflow.options(task_id="first")(tasks.gated).bind(1, gate)
    dag = workflow.options(task_id="second")(tasks.add).bind(first, 1)
    workflow.run_async(dag, workflow_id=wid)
    storage = context().storage
    deadline = time.monotonic() + 120
    while "second" not in run_sync(load_state(storage, wid)).tasks:  # pipelined behind "first"
        assert time.monotonic() < deadline, "the second task was never scheduled"
        time.sleep(0.05)
    kill_manager(fresh_backend)
    dead = run_sync(load_state(storage, wid))
    assert dead.tasks["second"].status is TaskStatus.SCHEDULED and dead.tasks["second"].attempt == 1
    open(gate, "w").close()
    assert workflow.get_output(wid) == 2  # no resume: the new manager took it on
    done = run_sync(load_state(storage, wid))
    assert done.tasks["first"].attempt == 2 and done.tasks["second"].attempt == 2
