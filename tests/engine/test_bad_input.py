"""Bad input gets a clear error that names the thing, and writes nothing."""

import threading

import pytest
import ray

import engine as workflow
from storage_backends import InvalidIdError
from tests.engine import tasks


def test_non_serializable_argument_names_the_task(local, wid):
    with pytest.raises(TypeError, match="cannot pickle"):
        tasks.add.bind(threading.Lock(), 1)  # Ray itself refuses at bind time
    node = tasks.add.bind(tasks.Fragile(), 1)
    tasks.Fragile.broken = True
    try:
        with pytest.raises(TypeError, match=r"an argument of task 'add' is not serializable"):
            workflow.run(node, workflow_id=wid)
    finally:
        tasks.Fragile.broken = False
    with pytest.raises(ValueError, match="does not exist"):
        workflow.get_status(wid)  # nothing was written


def test_non_serializable_output_fails_the_task_clearly(local, wid):
    with pytest.raises(workflow.WorkflowExecutionError) as info:
        workflow.run(tasks.unpicklable_output.bind(), workflow_id=wid)
    assert info.value.task_id == "unpicklable_output"
    assert "output of task 'unpicklable_output' is not serializable" in str(info.value)
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


def test_resuming_a_running_workflow_is_refused(local, wid):
    ref = workflow.run_async(tasks.slow.bind(1, 2.0), workflow_id=wid)
    with pytest.raises(workflow.WorkflowRunningError, match="already running"):
        workflow.resume(wid)
    assert ray.get(ref) == 1


def test_duplicate_task_ids_are_refused(local, wid):
    a = workflow.options(task_id="same")(tasks.add).bind(1, 1)
    b = workflow.options(task_id="same")(tasks.add).bind(2, 2)
    with pytest.raises(ValueError, match="task_id 'same' is used by two tasks"):
        workflow.run(tasks.add.bind(a, b), workflow_id=wid)
