"""How a run starts: it loads what the log says is done, then claims the log in the same
append as the first tasks' scheduled events, and launches them once that is durable."""

import pytest

import engine as workflow
from engine import _index
from engine._context import context
from engine._index import Entry
from engine._sync import run_sync
from replay import decode_event, load_state
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
    assert workflow.run(tasks.total.bind(leaves), workflow_id=wid) == 6
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
    blob = state.tasks["big_output"].output.blob
    assert blob is not None
    run_sync(storage.delete_blob(wid, blob))
    open(marker, "w").close()
    with pytest.raises(BlobNotFoundError, match=blob):
        workflow.resume(wid)
    assert run_sync(storage.next_seq(wid)) == state.next_seq
    assert workflow.get_status(wid) == workflow.FAILED
    assert run_sync(_index.load_entries(storage)).get(wid) == Entry(state.last_seq, "FAILED")  # no claim
