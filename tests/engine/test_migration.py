"""ray.workflow 2.47 code runs unchanged (issue 10, items 1-7 and 9).

Each test says what 2.47 did. "Tried on 2.47.1" means the scenario was run against
``ray==2.47.1`` in a throwaway virtualenv (ray.workflow with local storage) on this machine;
otherwise the source is 2.47's code (python/ray/workflow/ in ray-project/ray at 2.47).
"""

import os
import queue
import time

import pytest
import ray
from ray.dag import InputNode

import engine as workflow
from engine.api._init import context
from engine.store._sync import run_sync
from replay import load_state
from tests.engine import tasks
from tests.engine.tasks import count, tid


def _wait_for(condition, what, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


# --- 1. the options mapping -------------------------------------------------------------------

def test_options_mapping_on_a_remote_function(backend, wid):
    """2.47's most common line: ``f.options(**workflow.options(task_id=..., metadata=...))``.
    On Ray 2.48+ it failed ("argument after ** must be a mapping, not function")."""
    opts = workflow.options(task_id="x", metadata={"k": 1}, catch_exceptions=True, checkpoint=True,
                            max_retries=2, retry_exceptions=False)
    dag = tasks.add.options(**opts).bind(1, 2)
    assert workflow.run(dag, workflow_id=wid) == (3, None)
    meta = workflow.get_metadata(wid, "x")
    assert meta["user_metadata"] == {"k": 1}
    assert meta["task_options"] == {"task_type": "FUNCTION", "max_retries": 2, "catch_exceptions": True,
                                    "retry_exceptions": False, "checkpoint": True, "ray_options": {}}


def test_options_mapping_beside_ray_options_and_the_decorator(backend, wid):
    """Ray options pass through; ``.options(**workflow.options(...))`` on a decorated function
    layers over the decorator's options key by key (2.47 merged its ``_metadata`` per key)."""
    decorated = workflow.options(metadata={"from": "decorator"}, task_id="d")(tasks.resources_seen)
    dag = decorated.options(**workflow.options(task_id="t"), num_cpus=0.5).bind()
    assert workflow.run(dag, workflow_id=wid)["cpus"] == 0.5
    meta = workflow.get_metadata(wid, "t")
    assert meta["user_metadata"] == {"from": "decorator"}
    assert meta["task_options"]["ray_options"] == {"num_cpus": 0.5}


def test_options_mapping_works_outside_workflows_too(ray_runtime):
    """A plain ``.remote()`` of a function given workflow options runs as plain Ray."""
    assert ray.get(tasks.add.options(**workflow.options(task_id="y")).remote(2, 3)) == 5
    assert dict(workflow.options(task_id="y")).keys() == {"_labels"}


def test_unknown_option_still_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown workflow option\(s\) 'name'.*valid options are task_id"):
        tasks.add.options(**workflow.options(name="x"))


# --- 2. task ids ----------------------------------------------------------------------------

def test_default_ids_are_stable_across_a_resume(backend, wid, tmp_path):
    """Tried on 2.47.1: default ids are ``<module>.<qualname>``, repeats numbered ``_1``, ``_2``."""
    marker = str(tmp_path / "marker")
    first = tasks.add.bind(tasks.add.bind(1, 2), 1)  # both done before the failing task starts
    dag = tasks.add.bind(tasks.fails_until.bind(marker, first), 10)
    with pytest.raises(workflow.WorkflowExecutionError):
        workflow.run(dag, workflow_id=wid)
    before = run_sync(load_state(context().storage, wid)).tasks
    assert list(before)[:3] == [tid("add"), tid("add", 1), tid("fails_until")]  # (+ add_2, pipelined)
    open(marker, "w").close()
    assert workflow.resume(wid) == 14
    after = run_sync(load_state(context().storage, wid)).tasks
    assert list(after) == [tid("add"), tid("add", 1), tid("fails_until"), tid("add", 2)]
    assert after[tid("add")].attempt == after[tid("add", 1)].attempt == 1  # reused, not re-run


def test_continuation_ids_are_unique_in_the_workflow(backend, wid):
    """2.47 named every task of a workflow through one counter, continuations included, so a
    recursion asking for ``task_id="fact"`` at every level got fact, fact_1, fact_2 ..."""
    dag = workflow.options(task_id="fact")(tasks.named_factorial).bind(4)
    assert workflow.run(dag, workflow_id=wid) == 24
    state = run_sync(load_state(context().storage, wid))
    assert {"fact", "fact_1", "fact_2", "fact_3", "mul", "mul_1", "mul_2"} <= set(state.tasks)
    assert [workflow.get_output(wid, task_id=t) for t in ("mul_2", "mul_1", "mul")] == [2, 6, 24]
    factorial = workflow.run(tasks.factorial.bind(3), workflow_id=wid + "-f")
    assert factorial == 6
    ids = set(run_sync(load_state(context().storage, wid + "-f")).tasks)
    assert ids == {tid("factorial"), tid("factorial", 1), tid("factorial", 2), tid("mul"), tid("mul", 1)}


# --- 3. arguments -----------------------------------------------------------------------------

def test_nested_nodes_arrive_as_object_refs_and_resume_reuses_them(backend, wid, tmp_path):
    """Tried on 2.47.1: ``show.bind(one.bind(), [one.bind()], {"k": one.bind()}, kw=one.bind())``
    received ``(1, [ObjectRef], {"k": ObjectRef}, kw=1)``; a user ObjectRef likewise (value at
    the top, ref when nested). After a resume the refs point at the checkpointed values."""
    counter, marker = str(tmp_path / "count"), str(tmp_path / "marker")
    items = [tasks.counted_value.bind(counter, f"v{i}", i) for i in range(3)]
    dag = tasks.counted_sum.bind(items, counter, marker)
    with pytest.raises(workflow.WorkflowExecutionError):
        workflow.run(dag, workflow_id=wid)
    open(marker, "w").close()
    assert workflow.resume(wid) == 3
    assert [count(counter, f"v{i}") for i in range(3)] == [1, 1, 1]
    assert count(counter, "sum") == 2


# --- 4. InputNode -----------------------------------------------------------------------------

def test_input_node_takes_run_arguments_and_a_resume_needs_none(backend, wid, tmp_path):
    """2.47: ``run(dag, *args, **kwargs)`` fed InputNode; ``inp.x`` is kwargs["x"], ``inp[0]``
    args[0] (tried on 2.47.1). The inputs are in the submission, so resume takes no arguments."""
    marker = str(tmp_path / "marker")
    with InputNode() as inp:
        dag = tasks.add.bind(inp[0], tasks.fails_until.bind(marker, inp.x))
    with pytest.raises(workflow.WorkflowExecutionError):
        workflow.run(dag, 5, x=7, workflow_id=wid)
    open(marker, "w").close()
    assert workflow.resume(wid) == 12
    submission = run_sync(load_state(context().storage, wid)).submission
    assert submission.inputs is not None and submission.inputs.type_name == "builtins.tuple"
    with InputNode() as inp:
        single = tasks.describe.bind(inp, inp["a"])
    ref = workflow.run_async(single, {"a": 1}, workflow_id=wid + "-async")
    # one positional input is the value itself, as Ray's own dag.execute gives it
    assert ray.get(ref) == {"args": [{"a": 1}, 1], "kwargs": {}}


def test_input_node_errors_name_the_problem(backend, wid):
    with InputNode() as inp:
        dag = tasks.identity.bind(inp.x)
    with pytest.raises(ValueError, match="no inputs were given"):
        workflow.run(dag, workflow_id=wid)
    with pytest.raises(ValueError, match="reads input 'x'"):
        workflow.run(dag, y=1, workflow_id=wid)
    with pytest.raises(ValueError, match="has no InputNode"):
        workflow.run(tasks.identity.bind(1), 5, workflow_id=wid)
    with pytest.raises(workflow.WorkflowNotFoundError):
        workflow.get_status(wid)  # nothing was written


# --- 5. catch_exceptions + continuation ---------------------------------------------------------

@pytest.mark.parametrize("kind,expected", [("ok", (5, None)), ("root", "root bad"), ("inner", "inner bad")])
def test_catch_exceptions_covers_the_continuation(backend, wid, kind, expected):
    """Tried on 2.47.1: a catch_exceptions task that returns a continuation yields ``(5, None)``,
    or ``(None, error)`` whether the sub-DAG's output task or an inner task raised (2.47 looked
    up the catching task through the tasks that created the failing one)."""
    dag = tasks.continue_into.options(**workflow.options(catch_exceptions=True)).bind(kind)
    value, error = workflow.run(dag, workflow_id=wid)
    if kind == "ok":
        assert (value, error) == expected
    else:
        assert value is None and isinstance(error, ValueError) and str(error) == expected
        assert workflow.get_status(wid) == workflow.SUCCESSFUL
        stored_value, stored_error = workflow.get_output(wid)
        assert stored_value is None and str(stored_error) == expected


def test_a_caught_failure_is_retried_first(backend, wid, tmp_path):
    """2.47 retried (retry_exceptions) before it handed the error to the catching task."""
    path = str(tmp_path / "calls")
    dag = tasks.flaky.options(**workflow.options(catch_exceptions=True, retry_exceptions=True,
                                                 max_retries=1)).bind(path, 5)
    value, error = workflow.run(dag, workflow_id=wid)
    assert value is None and "flaky failure #2" in str(error)
    assert count(path, "call") == 2


# --- 6. metadata --------------------------------------------------------------------------------

def test_stats_have_end_time_only_once_ended(backend, wid, tmp_path):
    """Tried on 2.47.1: a running workflow's stats were ``{"start_time": ...}`` only; once it
    ended both. A task's stats likewise. After a resume start_time is the latest run's start."""
    gate = str(tmp_path / "gate")  # the task runs until the test has looked, however slow the machine
    ref = workflow.run_async(workflow.options(task_id="s")(tasks.gated).bind(1, gate), workflow_id=wid)
    _wait_for(lambda: "start_time" in workflow.get_metadata(wid, "s")["stats"], "the task to start")
    assert set(workflow.get_metadata(wid)["stats"]) == {"start_time"}
    assert set(workflow.get_metadata(wid, "s")["stats"]) == {"start_time"}
    open(gate, "w").close()
    assert ray.get(ref) == 1
    stats = workflow.get_metadata(wid)["stats"]
    assert set(stats) == {"start_time", "end_time"} and stats["start_time"] <= stats["end_time"]
    assert set(workflow.get_metadata(wid, "s")["stats"]) == {"start_time", "end_time"}

    marker = str(tmp_path / "marker")
    with pytest.raises(workflow.WorkflowExecutionError):
        workflow.run(tasks.fails_until.bind(marker, 1), workflow_id=wid + "-r")
    first = workflow.get_metadata(wid + "-r")["stats"]
    assert set(first) == {"start_time", "end_time"}  # FAILED has ended
    open(marker, "w").close()
    workflow.resume(wid + "-r")
    second = workflow.get_metadata(wid + "-r")["stats"]
    assert second["start_time"] > first["end_time"]


def test_a_canceled_workflow_says_when_it_ended(backend, wid):
    """2.47 left end_time out for CANCELED; ours records it (a deliberate difference)."""
    workflow.run_async(tasks.slow.bind(1, 30), workflow_id=wid)
    _wait_for(lambda: workflow.get_status(wid) == workflow.RUNNING, "it to run")
    workflow.cancel(wid)
    stats = workflow.get_metadata(wid)["stats"]
    assert workflow.get_metadata(wid)["status"] == "CANCELED" and stats["end_time"] >= stats["start_time"]


# --- 7. exceptions --------------------------------------------------------------------------------

def test_a_failed_workflow_is_caught_as_the_2_47_docs_catch_it(backend, wid):
    """The error-handling page: ``try: workflow.run(r1) except ray.exceptions.RayTaskError``.
    2.47's run raised ``RayTaskError(WorkflowExecutionError)`` (tried on 2.47.1)."""
    dag = tasks.boom.options(max_retries=5).bind("oops")
    with pytest.raises(ray.exceptions.RayTaskError) as info:
        workflow.run(dag, workflow_id=wid)
    assert isinstance(info.value, workflow.WorkflowExecutionError)
    assert isinstance(info.value, workflow.exceptions.WorkflowExecutionError)
    assert info.value.task_id == tid("boom") and isinstance(info.value.cause, ValueError)
    assert str(info.value) == f"workflow '{wid}' failed: task '{tid('boom')}' raised ValueError: oops"
    with pytest.raises(ray.exceptions.RayTaskError):
        ray.get(workflow.run_async(dag, workflow_id=wid + "-a"))
    with pytest.raises(workflow.WorkflowExecutionError):
        ray.get(workflow.get_output_async(wid))
    with pytest.raises(ray.exceptions.RayTaskError):
        workflow.resume(wid)


def test_running_a_running_workflow_is_a_runtime_error(backend, wid):
    """2.47: ``RuntimeError: Workflow 'x' is already running or pending`` from run, run_async,
    resume and resume_async (tried on 2.47.1)."""
    ref = workflow.run_async(tasks.slow.bind(1, 2), workflow_id=wid)
    _wait_for(lambda: workflow.get_status(wid) == workflow.RUNNING, "it to run")
    for call in (lambda: workflow.run(tasks.slow.bind(1, 2), workflow_id=wid),
                 lambda: workflow.run_async(tasks.slow.bind(1, 2), workflow_id=wid),
                 lambda: workflow.resume(wid), lambda: workflow.resume_async(wid)):
        with pytest.raises(RuntimeError, match="already running"):
            call()
    assert ray.get(ref) == 1


def test_a_full_queue_is_queue_full(ray_runtime, tmp_path, wid):
    """2.47 raised ``queue.Full("Workflow queue has been full")`` from the manager."""
    workflow.init(f"file://{tmp_path}/q", max_running_workflows=1, max_pending_workflows=0)
    ref = workflow.run_async(tasks.slow.bind(1, 2), workflow_id=wid)
    with pytest.raises(queue.Full):
        workflow.run(tasks.identity.bind(2), workflow_id=wid + "-2")
    assert ray.get(ref) == 1


def test_engine_exceptions_has_2_47_names():
    import engine.exceptions as exceptions

    for name in ("WorkflowError", "WorkflowExecutionError", "WorkflowCancellationError",
                 "WorkflowNotResumableError", "WorkflowTaskNotRecoverableError", "WorkflowNotFoundError",
                 "WorkflowStillActiveError"):
        assert issubclass(getattr(exceptions, name), exceptions.WorkflowError)
        assert getattr(workflow.exceptions, name) is getattr(exceptions, name)
    error = exceptions.WorkflowNotFoundError("w")
    assert error.message == str(error)


def test_init_checks_limits_as_2_47_did(ray_runtime, tmp_path):
    with pytest.raises(TypeError, match="max_running_workflows must be None or an int"):
        workflow.init(f"file://{tmp_path}/l", max_running_workflows="4")
    with pytest.raises(ValueError, match="max_running_workflows must be -1"):
        workflow.init(f"file://{tmp_path}/l", max_running_workflows=0)
    with pytest.raises(ValueError, match="max_pending_workflows must be -1"):
        workflow.init(f"file://{tmp_path}/l", max_pending_workflows=-3)
    workflow.init(f"file://{tmp_path}/l", max_running_workflows=-1, max_pending_workflows=3)
    with pytest.raises(ValueError, match="runs with max_running_workflows=-1, max_pending_workflows=3"):
        workflow.init(f"file://{tmp_path}/l", max_pending_workflows=4)


# --- 9. bugs found while trying it --------------------------------------------------------------

def test_get_output_async_right_after_run_async(backend, wid):
    """It used to fail about half the time: the finished run was looked up between reading the
    log and asking the manager."""
    for i in range(20):
        workflow.run_async(tasks.add.bind(i, 1), workflow_id=f"{wid}-{i}")
        assert ray.get(workflow.get_output_async(f"{wid}-{i}")) == i + 1


def test_an_unpicklable_exception_keeps_its_type_and_message(backend, wid):
    with pytest.raises(workflow.WorkflowExecutionError) as info:
        workflow.run(tasks.call_api.bind(), workflow_id=wid)
    assert "LockedError: HTTP 503 from upstream" in str(info.value)
    with pytest.raises(workflow.WorkflowExecutionError) as later:
        workflow.get_output(wid)
    assert "HTTP 503 from upstream" in str(later.value)

