"""Bad input gets a clear error that names the thing, and writes nothing."""

import os
import threading

import pytest
import ray

import engine as workflow
from engine.api._init import context
from engine.store._sync import run_sync
from replay import TaskStatus, WorkflowStatus, load_state
from storage_backends import InvalidIdError, LogCorruptedError
from tests.engine import tasks


def test_non_serializable_argument_names_the_task(local, wid):
    with pytest.raises(TypeError, match="cannot pickle"):
        tasks.add.bind(threading.Lock(), 1)  # Ray itself refuses at bind time
    node = tasks.add.bind(tasks.Fragile(), 1)
    tasks.Fragile.broken = True
    try:
        with pytest.raises(TypeError, match=r"an argument of task 'tests.engine.tasks.add' is not serializable"):
            workflow.run(node, workflow_id=wid)
    finally:
        tasks.Fragile.broken = False
    with pytest.raises(ValueError, match="does not exist"):
        workflow.get_status(wid)  # nothing was written


def test_non_serializable_output_fails_the_task_clearly(local, wid):
    with pytest.raises(workflow.WorkflowExecutionError) as info:
        workflow.run(tasks.unpicklable_output.bind(), workflow_id=wid)
    assert info.value.task_id == tasks.tid("unpicklable_output")
    assert f"output of task '{tasks.tid('unpicklable_output')}' is not serializable" in str(info.value)
    assert workflow.get_status(wid) == workflow.FAILED


def test_unknown_option_is_named():
    with pytest.raises(ValueError, match=r"unknown workflow option\(s\) 'num_cpu'.*valid options are"):
        workflow.options(num_cpu=1)
    with pytest.raises(ValueError, match="max_retries must be an int"):
        workflow.options(max_retries="3")
    with pytest.raises(TypeError, match="must decorate a @ray.remote function"):
        workflow.options(task_id="x")(lambda: 1)


def test_metadata_must_be_json(local, wid):
    with pytest.raises(ValueError, match=r"workflow metadata\['when'\] is not JSON-serializable"):
        workflow.run(tasks.add.bind(1, 2), workflow_id=wid, metadata={"when": object()})
    with pytest.raises(ValueError, match=r"task metadata\['x'\] is not JSON-serializable"):
        workflow.options(metadata={"x": {1, 2}})
    with pytest.raises(ValueError, match="does not exist"):
        workflow.get_status(wid)


@pytest.mark.parametrize("bad", ["../escape", "a/b", "", "has space", "x" * 200])
def test_malformed_workflow_id(local, bad):
    with pytest.raises(InvalidIdError, match="workflow id"):
        workflow.run(tasks.add.bind(1, 2), workflow_id=bad)
    assert issubclass(InvalidIdError, ValueError)


def test_unknown_storage_url_scheme(ray_runtime):
    from storage_backends import UnknownSchemeError

    with pytest.raises(UnknownSchemeError, match="unknown storage URL scheme 'gs'"):
        workflow.init("gs://bucket/path")


def test_not_a_dag(local):
    with pytest.raises(TypeError, match=r"DAG made with f.bind"):
        workflow.run(tasks.add, workflow_id="not-a-dag")


def test_resuming_a_running_workflow_is_refused(local, wid, tmp_path):
    gate = str(tmp_path / "gate")
    ref = workflow.run_async(tasks.gated.bind(1, gate), workflow_id=wid)
    with pytest.raises(workflow.WorkflowRunningError, match="already running"):
        workflow.resume(wid)
    open(gate, "w").close()
    assert ray.get(ref) == 1


def test_a_task_id_used_twice_is_numbered_not_refused(local, wid):
    """2.47 numbered repeats of a task_id (same, same_1, ...); earlier ray-durable refused them."""
    a = workflow.options(task_id="same")(tasks.add).bind(1, 1)
    b = workflow.options(task_id="same")(tasks.add).bind(2, 2)
    assert workflow.run(workflow.options(task_id="same")(tasks.add).bind(a, b), workflow_id=wid) == 6
    assert [workflow.get_output(wid, task_id=t) for t in ("same", "same_1", "same_2")] == [2, 4, 6]


def _log_file(workflow_id):
    return os.path.join(context().storage.root, workflow_id, "events.log")


def test_a_corrupted_log_is_named_and_left_as_it_is(local, wid):
    """A flipped byte inside a log: every call about that workflow says which log is damaged
    and where, and none of them writes to it (run of its id included: it must not resume)."""
    dag = tasks.add.bind(tasks.add.bind(1, 2), 3)
    assert workflow.run(dag, workflow_id=wid) == 6
    path = _log_file(wid)
    with open(path, "r+b") as f:  # inside the first batch's records (the submission is ~2 KB)
        f.seek(100)
        byte = f.read(1)
        f.seek(100)
        f.write(bytes([byte[0] ^ 0xFF]))
    with open(path, "rb") as f:
        damaged = f.read()
    calls = [lambda: workflow.run(dag, workflow_id=wid), lambda: workflow.run_async(dag, workflow_id=wid),
             lambda: workflow.resume(wid), lambda: workflow.get_status(wid), lambda: workflow.get_output(wid),
             lambda: workflow.get_metadata(wid)]
    for call in calls:
        with pytest.raises(LogCorruptedError, match=wid) as info:
            call()
        assert info.value.log_id == wid and info.value.offset == 0  # the first batch
    with open(path, "rb") as f:
        assert f.read() == damaged


def test_a_torn_tail_is_an_append_that_never_happened(local, wid, tmp_path):
    """A crash in the middle of the last append leaves a torn batch: it is not there (the
    workflow is RESUMABLE), and resume finishes it without re-running what was recorded before."""
    calls = str(tmp_path / "calls")
    first = workflow.options(task_id="first")(tasks.counted_add).bind(calls, "first", 1, 2)
    # (slow, so that the first's completion is surely in an earlier batch than the second's)
    dag = workflow.options(task_id="second")(tasks.counted_slow_step).bind(first, calls, "second")
    assert workflow.run(dag, workflow_id=wid) == 4
    state = run_sync(load_state(context().storage, wid))
    path = _log_file(wid)
    os.truncate(path, os.path.getsize(path) - 3)  # tears the last batch (the workflow's success)
    torn = run_sync(load_state(context().storage, wid))
    assert torn.last_seq < state.last_seq and torn.status is WorkflowStatus.RUNNING
    assert torn.tasks["first"].status is TaskStatus.SUCCESSFUL  # recorded in an earlier batch
    assert torn.tasks["second"].status is not TaskStatus.SUCCESSFUL  # its completion was torn off
    assert workflow.get_status(wid) == workflow.RESUMABLE
    assert workflow.resume(wid) == 4
    assert workflow.get_status(wid) == workflow.SUCCESSFUL
    assert (tasks.count(calls, "first"), tasks.count(calls, "second")) == (1, 2)
