"""The "Workflow Metadata" page of ray.workflow 2.47 (doc/source/workflows/metadata.rst).

See the package docstring for what is changed in the snippets and what is out of scope.
"""

from __future__ import annotations

import os
import time
import uuid

import pytest
import ray

import engine as workflow



@ray.remote
def add(left: int, right: int) -> int:
    return left + right


def test_retrieving_workflow_metadata(page):
    """"Retrieving metadata": ``get_metadata("add_example")`` of a finished workflow has status
    SUCCESSFUL and ``start_time``/``end_time`` in ``stats`` (the page's asserts). Tried on
    2.47.1: ``{'status': ..., 'user_metadata': {}, 'stats': {'start_time': ..., 'end_time': ...}}``."""
    workflow.run(add.bind(10, 20), workflow_id="add_example")
    workflow_metadata = workflow.get_metadata("add_example")
    assert workflow_metadata["status"] == "SUCCESSFUL"
    assert "start_time" in workflow_metadata["stats"]
    assert "end_time" in workflow_metadata["stats"]
    assert workflow_metadata["stats"]["end_time"] >= workflow_metadata["stats"]["start_time"]
    assert workflow_metadata["user_metadata"] == {}


def test_task_metadata(page):
    """"Retrieving metadata" of a task: ``add.options(**workflow.options(task_id="add_task"))``,
    then ``get_metadata("add_example_2", task_id="add_task")``. (The page then asserts on the
    *workflow's* metadata again, a slip; this asserts on the task's.) 2.47's task metadata:
    ``task_id``, ``task_options`` (``max_retries``, ``catch_exceptions``, ``retry_exceptions``,
    ``checkpoint``, ``ray_options`` ...), ``user_metadata``, ``stats``."""
    workflow.run(add.options(**workflow.options(task_id="add_task")).bind(10, 20), workflow_id="add_example_2")
    task_metadata = workflow.get_metadata("add_example_2", task_id="add_task")
    assert task_metadata["task_id"] == "add_task"
    assert "start_time" in task_metadata["stats"] and "end_time" in task_metadata["stats"]
    for option in ("max_retries", "catch_exceptions", "retry_exceptions", "checkpoint"):
        assert option in task_metadata["task_options"]


def test_user_defined_metadata(page):
    """"User-defined metadata": workflow metadata through ``run(metadata=...)``, task metadata
    through ``.options(**workflow.options(task_id="add_task", metadata={...}))``; 2.47: both read
    back by ``get_metadata(...)["user_metadata"]`` (the page's asserts)."""
    workflow.run(add.options(**workflow.options(task_id="add_task", metadata={"task_k": "task_v"})).bind(10, 20),
                 workflow_id="add_example_3", metadata={"workflow_k": "workflow_v"})
    assert workflow.get_metadata("add_example_3")["user_metadata"] == {"workflow_k": "workflow_v"}
    assert workflow.get_metadata("add_example_3", task_id="add_task")["user_metadata"] == {"task_k": "task_v"}


def test_user_defined_metadata_decorator_form(page):
    """"User-defined metadata", the decorator way the page names: ``@workflow.options(metadata=...)``."""

    @workflow.options(task_id="add_task", metadata={"task_k": "task_v"})
    @ray.remote
    def add_with_metadata(left: int, right: int) -> int:
        return left + right

    workflow_id = f"meta-{uuid.uuid4().hex[:8]}"
    workflow.run(add_with_metadata.bind(10, 20), workflow_id=workflow_id, metadata={"workflow_k": "workflow_v"})
    assert workflow.get_metadata(workflow_id)["user_metadata"] == {"workflow_k": "workflow_v"}
    assert workflow.get_metadata(workflow_id, task_id="add_task")["user_metadata"] == {"task_k": "task_v"}


def test_user_metadata_must_be_json(page):
    """"Note: user-defined metadata must be a python dictionary with values that are JSON
    serializable" (2.47's ``validate_user_metadata`` raised ValueError)."""
    with pytest.raises(ValueError):
        workflow.run(add.bind(1, 2), metadata={"k": object()})
    with pytest.raises(ValueError):
        workflow.options(metadata={"k": {1, 2}})


@ray.remote(num_cpus=0)  # waiting holds no CPU: the test cluster has two
def simple_waits(path: str):
    while not os.path.exists(path):  # the page's time.sleep(1000), ended by the test instead
        time.sleep(0.05)
    return 0


def test_metadata_of_a_running_then_canceled_workflow(page, tmp_path, wait_for):
    """"Notes" 1: ``get_metadata`` answers at once, so a running workflow's stats have
    ``start_time`` and no ``end_time`` (the page's asserts; 2.47.1 gave
    ``{'status': 'RUNNING', 'user_metadata': {}, 'stats': {'start_time': ...}}``). After
    ``cancel`` the page asserts CANCELED and still no ``end_time``: so did 2.47.1. Issue 10
    (item 6) asks for a canceled workflow's stats to say when it ended, a deliberate
    difference, so that is what is asserted here."""
    workflow_id = f"running-{uuid.uuid4().hex[:8]}"
    workflow.run_async(simple_waits.bind(str(tmp_path / "never")), workflow_id=workflow_id)
    task_id = f"{__name__}.simple_waits"  # 2.47's default task id: <module>.<qualname>
    wait_for(lambda: workflow.get_metadata(workflow_id, task_id=task_id)["stats"].get("start_time"),
              "the task to start")
    workflow_metadata = workflow.get_metadata(workflow_id)
    assert workflow_metadata["status"] == "RUNNING"
    assert "start_time" in workflow_metadata["stats"]
    assert "end_time" not in workflow_metadata["stats"]

    workflow.cancel(workflow_id)
    workflow_metadata = workflow.get_metadata(workflow_id)
    assert workflow_metadata["status"] == "CANCELED"
    assert "start_time" in workflow_metadata["stats"]
    assert workflow_metadata["stats"]["end_time"] >= workflow_metadata["stats"]["start_time"]


@ray.remote
def simple(error_flag: str):
    if os.path.exists(error_flag):
        raise ValueError()
    return 0


def test_stats_are_updated_when_a_workflow_is_resumed(page, tmp_path):
    """"Notes" 2: "For resumed workflows, the current behavior is that "stats" will be updated
    whenever a workflow is resumed": run fails (caught as ``ray.exceptions.RayTaskError``), FAILED;
    the flag is removed, ``resume_async`` gives 0, and the resumed workflow's ``start_time`` and
    ``end_time`` are both later than the failed run's (the page's asserts; 2.47.1 did so).
    (The page's flag file is relative to the driver's directory; here it is absolute.)"""
    workflow_id = f"simple-{uuid.uuid4().hex[:8]}"
    error_flag = tmp_path / "error"
    error_flag.touch()
    try:
        workflow.run(simple.bind(str(error_flag)), workflow_id=workflow_id)
    except ray.exceptions.RayTaskError:
        pass
    workflow_metadata_failed = workflow.get_metadata(workflow_id)
    assert workflow_metadata_failed["status"] == "FAILED"

    # remove flag to make task success
    error_flag.unlink()
    ref = workflow.resume_async(workflow_id)
    assert ray.get(ref) == 0

    workflow_metadata_resumed = workflow.get_metadata(workflow_id)
    assert workflow_metadata_resumed["status"] == "SUCCESSFUL"
    # make sure resume updated running metrics
    assert workflow_metadata_resumed["stats"]["start_time"] > workflow_metadata_failed["stats"]["start_time"]
    assert workflow_metadata_resumed["stats"]["end_time"] > workflow_metadata_failed["stats"]["end_time"]
