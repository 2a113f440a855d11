"""The "Workflow Management" page of ray.workflow 2.47 (doc/source/workflows/management.rst).

See the package docstring for what is changed in the snippets and what is out of scope.
"""

from __future__ import annotations

import os
import queue
import time
import uuid
from urllib.parse import urlsplit

import pytest
import ray

import engine as workflow



@ray.remote
def task():
    return 3


def test_workflow_ids_run_again_resumes(page):
    """"Workflow IDs": "If .run() is called with a previously created workflow id, the workflow
    will be resumed from the previous execution" (2.47: a finished one returns its output)."""
    workflow_id = f"ids-{uuid.uuid4().hex[:8]}"
    assert workflow.run(task.bind(), workflow_id=workflow_id) == 3
    assert workflow.run(task.bind(), workflow_id=workflow_id) == 3
    assert workflow.run_async(task.bind()) is not None  # no id: a random one is generated


def test_single_workflow_management_apis(page):
    """"Single workflow management APIs": run "workflow_id", get its status (catching
    ``workflow.exceptions.WorkflowNotFoundError``), resume it (the page prints 3: 2.47 returned
    the finished workflow's output), cancel it, delete it. Tried on 2.47.1: after ``delete``,
    ``get_status`` raised WorkflowNotFoundError. (2.47 also turned the finished workflow
    CANCELED on ``cancel``; here cancel of a finished workflow is a logged no-op, a difference
    the README's migration table lists; the snippet does not look at it.)"""
    workflow.run(task.bind(), workflow_id="workflow_id")
    try:
        status = workflow.get_status(workflow_id="workflow_id")
        assert status in {"RUNNING", "RESUMABLE", "FAILED", "CANCELED", "SUCCESSFUL"}
    except workflow.exceptions.WorkflowNotFoundError:
        raise AssertionError("the workflow was just run")
    assert workflow.resume(workflow_id="workflow_id") == 3
    workflow.cancel(workflow_id="workflow_id")
    workflow.delete(workflow_id="workflow_id")
    with pytest.raises(workflow.exceptions.WorkflowNotFoundError):
        workflow.get_status(workflow_id="workflow_id")
    # An earlier version of the page caught ValueError instead: that still works.
    try:
        workflow.get_status(workflow_id="workflow_id")
    except ValueError:
        pass
    else:
        raise AssertionError("a deleted workflow has no status")


@ray.remote(num_cpus=0)  # waiting holds no CPU: the test cluster has two
def wait_for_file(path: str, value):
    while not os.path.exists(path):
        time.sleep(0.05)
    return value


@ray.remote
def fail_unless_file(path: str, value):
    if not os.path.exists(path):
        raise ValueError(f"no {path}")
    return value


def test_bulk_workflow_management_apis(ray_runtime, tmp_path, wait_for):
    """"Bulk workflow management APIs": ``list_all("RUNNING")``, ``list_all({"RUNNING",
    "CANCELED"})``, ``list_all()``, ``resume_all()`` ("This won't include failed workflow") and
    ``resume_all(include_failed=True)``. The page's output is mocked, so the scenario is built:
    one workflow running, one canceled, one failed, one finished. 2.47 returned
    ``[(id, status)]`` and ``[(id, ObjectRef)]``. (A storage of its own: the listings count every
    workflow in it. RESUMABLE ones need a lost cluster: ``resume_all`` of those is in
    ``tests/engine/test_cluster_failure.py``; a lost manager alone is replaced, and its successor
    takes its workflows on by itself.)"""
    url = f"file://{tmp_path}/store"
    workflow.init(url)
    go, fixed = str(tmp_path / "go"), str(tmp_path / "fixed")
    running = workflow.run_async(wait_for_file.bind(go, "r"), workflow_id="running")
    workflow.run_async(wait_for_file.bind(go, "c"), workflow_id="canceled")
    with pytest.raises(Exception):
        workflow.run(fail_unless_file.bind(fixed, "f"), workflow_id="failed")
    assert workflow.run(task.bind(), workflow_id="done") == 3
    wait_for(lambda: workflow.get_status("canceled") == "RUNNING", "the second workflow to run")
    workflow.cancel("canceled")

    assert workflow.list_all("RUNNING") == [("running", "RUNNING")]
    assert sorted(workflow.list_all({"RUNNING", "CANCELED"})) == [("canceled", "CANCELED"), ("running", "RUNNING")]
    assert sorted(workflow.list_all()) == [("canceled", "CANCELED"), ("done", "SUCCESSFUL"),
                                           ("failed", "FAILED"), ("running", "RUNNING")]
    assert workflow.resume_all() == []  # RUNNING is left alone, FAILED needs include_failed
    open(fixed, "w").close()
    resumed = workflow.resume_all(include_failed=True)
    assert [w for w, _ in resumed] == ["failed"] and isinstance(resumed[0][1], ray.ObjectRef)
    assert ray.get(resumed[0][1]) == "f"
    open(go, "w").close()
    assert ray.get(running) == "r"
    assert sorted(workflow.list_all()) == [("canceled", "CANCELED"), ("done", "SUCCESSFUL"),
                                           ("failed", "SUCCESSFUL"), ("running", "SUCCESSFUL")]


def test_storage_configuration_local_path(ray_runtime, tmp_path):
    """"Storage Configuration", local file system: ``ray.init(storage="/path/to/storage_dir")``
    (in 2.47; here ``workflow.init`` with the same plain path)."""
    workflow.init(str(tmp_path / "storage_dir"))
    assert workflow.run(task.bind(), workflow_id="local") == 3
    assert os.path.isdir(tmp_path / "storage_dir" / "local")


def test_storage_configuration_s3(ray_runtime, moto_server, s3_url):
    """"Storage Configuration", S3: ``ray.init(storage="s3://bucket/path")`` (here
    ``workflow.init``), with the endpoint of an S3-compatible store given the way 2.47's pyarrow
    URIs took it, ``?endpoint_override=HOST:PORT&scheme=http``."""
    host = urlsplit(moto_server).netloc
    workflow.init(f"{s3_url}?endpoint_override={host}&scheme=http&region=us-east-1")
    assert workflow.run(task.bind(), workflow_id="on-s3") == 3
    assert workflow.list_all() == [("on-s3", "SUCCESSFUL")]


def test_concurrency_control(fresh_storage, tmp_path):
    """"Concurrency Control": ``workflow.init(max_running_workflows=..., max_pending_workflows=...)``;
    a workflow over the running limit is PENDING, and "getting the output of a pending workflow
    would be blocked until the workflow finishes running later"."""
    workflow.init(fresh_storage, max_running_workflows=1, max_pending_workflows=1)
    go = str(tmp_path / "go")
    first = workflow.run_async(wait_for_file.bind(go, 1), workflow_id="first")
    second = workflow.run_async(wait_for_file.bind(go, 2), workflow_id="second")
    assert workflow.get_status("first") == workflow.RUNNING
    assert workflow.get_status("second") == workflow.PENDING
    pending_output = workflow.get_output_async("second")
    ready, _ = ray.wait([pending_output], timeout=0.5)
    assert ready == []  # blocked while it waits
    open(go, "w").close()
    assert ray.get([first, second, pending_output]) == [1, 2, 2]


def test_a_full_queue_raises_queue_full(fresh_storage, tmp_path):
    """"Concurrency Control": "Submitting workflows when the number of pending workflows is at
    maximum would raise ``queue.Full("Workflow queue has been full")``" (workflow_access.py)."""
    workflow.init(fresh_storage, max_running_workflows=1, max_pending_workflows=1)
    go = str(tmp_path / "go")
    refs = [workflow.run_async(wait_for_file.bind(go, i), workflow_id=f"q{i}") for i in range(2)]
    try:
        with pytest.raises(queue.Full):
            workflow.run_async(wait_for_file.bind(go, 2), workflow_id="q2")
    finally:
        open(go, "w").close()
        ray.get(refs)


def test_init_again_with_other_limits_raises(fresh_storage):
    """"Concurrency Control": "``workflow.init()`` again with a different configuration would raise
    an error except ``None`` is given" (2.47: ValueError from ``validate_init_options``)."""
    workflow.init(fresh_storage, max_running_workflows=10, max_pending_workflows=50)
    workflow.init(fresh_storage)  # None: keeps the previous values
    workflow.init(fresh_storage, max_running_workflows=10)
    with pytest.raises(ValueError):
        workflow.init(fresh_storage, max_running_workflows=5, max_pending_workflows=50)
