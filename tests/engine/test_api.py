"""The ray.workflow API against a real Ray runtime, on local storage and on S3 (moto)."""

import json
import time

import pytest
import ray

import engine as workflow
from engine.store import _payloads
from engine.api._init import context
from engine.graph._build import build_graph
from engine.runtime._manager import _submitted_state
from engine.store._sync import run_sync
from replay import PayloadRef, WorkflowRunStarted, WorkflowSubmitted, encode_event, load_state
from storage_backends import open_storage
from tests.engine import tasks


def test_run_returns_output_and_metadata(backend, wid):
    dag = tasks.add.bind(tasks.add.bind(1, 2), 3)
    assert workflow.run(dag, workflow_id=wid, metadata={"team": "x"}) == 6
    assert workflow.get_status(wid) == workflow.SUCCESSFUL == "SUCCESSFUL"
    meta = workflow.get_metadata(wid)
    assert meta["status"] == "SUCCESSFUL"
    assert meta["user_metadata"] == {"team": "x"}
    assert meta["stats"]["start_time"] <= meta["stats"]["end_time"]
    assert meta["runtime_env"] == {"env_vars": {"RAY_DURABLE_TEST": "<not recorded>"}}  # names, not values
    assert meta["ray_version"] == ray.__version__ and "msgspec" in meta["packages"]
    assert workflow.get_output(wid) == 6
    assert workflow.get_output(wid, task_id=tasks.tid("add")) == 3


def test_run_async_and_generated_ids(backend):
    ref = workflow.run_async(tasks.add.bind(20, 22))
    assert isinstance(ref, ray.ObjectRef)
    assert ray.get(ref) == 42
    ids = [w for w, _ in workflow.list_all()]
    assert len(set(ids)) == len(ids)


def test_rerun_of_finished_workflow_runs_nothing(backend, wid, tmp_path):
    path = str(tmp_path / "calls")
    dag = tasks.counted_add.bind(path, "a", 1, 2)
    assert workflow.run(dag, workflow_id=wid) == 3
    assert workflow.run(dag, workflow_id=wid) == 3
    assert ray.get(workflow.run_async(dag, workflow_id=wid)) == 3
    assert workflow.resume(wid) == 3
    assert ray.get(workflow.resume_async(wid)) == 3
    assert tasks.count(path) == 1


def test_nested_arguments_and_object_refs(backend, wid):
    """Direct arguments arrive as values, nested ones as ObjectRefs (2.47 and plain Ray alike)."""
    ref = ray.put([10, 20])
    a = tasks.add.bind(1, 1)
    dag = tasks.describe.bind([a, {"deep": (a, tasks.add.bind(2, 2))}], ref, [ref], a, k={"x": a}, v=a)
    out = workflow.run(dag, workflow_id=wid)
    assert out == {"args": [[("ref", 2), {"deep": (("ref", 2), ("ref", 4))}], [10, 20], [("ref", [10, 20])], 2],
                   "kwargs": {"k": {"x": ("ref", 2)}, "v": 2}}
    fan_in = tasks.total.bind([tasks.add.bind(i, i) for i in range(10)])
    assert workflow.run(fan_in, workflow_id=wid + "-fan") == 90


def test_large_output_goes_to_a_blob(backend, wid):
    assert workflow.run(tasks.big_output.bind(100_000), workflow_id=wid) == b"x" * 100_000
    assert workflow.get_output(wid) == b"x" * 100_000


def test_a_large_dag_is_one_blob_named_by_its_content(backend, wid):
    """Over the inline limit the DAG is a blob named by its digest (a racing driver with the same
    id can only write the same bytes to that name); running the id again with another DAG
    resumes the first and writes nothing."""
    big = "x" * 40_000
    assert workflow.run(tasks.identity.bind(big), workflow_id=wid) == big
    storage = context().storage
    dag_ref = run_sync(load_state(storage, wid)).submission.dag
    assert dag_ref.inline is None and dag_ref.blob == f"dag-{dag_ref.digest}"
    other = tasks.identity.bind("y" * 40_000)
    other_blob = f"dag-{_payloads.digest(build_graph(other).to_bytes())}"
    assert other_blob != dag_ref.blob
    assert workflow.run(other, workflow_id=wid) == big
    assert ray.get(workflow.run_async(other, workflow_id=wid)) == big
    assert not run_sync(storage.blob_exists(wid, other_blob))
    assert run_sync(storage.next_seq(wid)) == run_sync(load_state(storage, wid)).next_seq


async def test_the_manager_folds_the_submission_it_is_handed(tmp_path):
    """workflow.run hands the manager the record it appended at seq 0 of a new log; folding it
    must give exactly what reading the log back would. Anything else is not trusted."""
    storage = open_storage(str(tmp_path))
    dag = PayloadRef(size=3, digest="0" * 32, inline=b"dag")
    record = encode_event(WorkflowSubmitted(ts=1.0, workflow_id="w", dag=dag, user_metadata={"k": 1}))
    await storage.append("w", [record], 0)
    assert _submitted_state("w", record) == await load_state(storage, "w")
    assert _submitted_state("other", record) is None  # another workflow's submission
    assert _submitted_state("w", encode_event(WorkflowRunStarted(ts=2.0, run_id="r"))) is None
    assert _submitted_state("w", None) is None
    await storage.close()


def test_status_constants_and_unknown_ids(backend):
    assert {workflow.RUNNING, workflow.FAILED, workflow.RESUMABLE, workflow.CANCELED,
            workflow.SUCCESSFUL, workflow.PENDING} == set(workflow.WorkflowStatus)
    with pytest.raises(ValueError, match="does not exist"):
        workflow.get_status("no-such-workflow")
    with pytest.raises(workflow.WorkflowNotFoundError):
        workflow.get_metadata("no-such-workflow")
    with pytest.raises(workflow.WorkflowNotResumableError, match="does not exist"):
        workflow.resume("no-such-workflow")


def test_failure_carries_task_id_and_original_exception(backend, wid):
    dag = tasks.add.bind(tasks.boom.bind("bad input"), 1)
    with pytest.raises(workflow.WorkflowExecutionError) as info:
        workflow.run(dag, workflow_id=wid)
    assert info.value.task_id == tasks.tid("boom")
    assert isinstance(info.value.cause, ValueError)
    assert "bad input" in str(info.value.cause)
    assert workflow.get_status(wid) == workflow.FAILED
    with pytest.raises(workflow.WorkflowExecutionError):
        workflow.get_output(wid)


def test_get_output_waits_for_a_running_workflow(backend, wid, tmp_path):
    gate = str(tmp_path / "gate")
    ref = workflow.run_async(tasks.gated.bind("done", gate), workflow_id=wid)
    waiting = workflow.get_output_async(wid)
    assert workflow.get_status(wid) == workflow.RUNNING
    assert not ray.wait([waiting], timeout=0.5)[0]
    open(gate, "w").close()
    assert ray.get(waiting) == "done"
    assert ray.get(ref) == "done"


def test_task_metadata_and_options(backend, wid):
    dag = workflow.options(task_id="first", metadata={"k": 1})(tasks.add).bind(1, 2)
    assert workflow.run(tasks.identity.bind(dag), workflow_id=wid) == 3
    meta = workflow.get_metadata(wid, task_id="first")
    assert meta["task_id"] == "first"
    assert meta["user_metadata"] == {"k": 1}
    assert meta["task_options"]["max_retries"] == 3
    assert meta["stats"]["start_time"] <= meta["stats"]["end_time"]
    json.dumps(meta)
    with pytest.raises(ValueError, match="no task"):
        workflow.get_metadata(wid, task_id="nope")


def test_ray_options_are_honoured(backend, wid):
    remote = workflow.options(task_id="res")(tasks.resources_seen).options(
        num_cpus=0.5, runtime_env={"env_vars": {"RD_TEST_ENV": "hello"}})
    out = workflow.run(remote.bind(), workflow_id=wid)
    assert out == {"cpus": 0.5, "env": "hello"}
    options = workflow.get_metadata(wid, task_id="res")["task_options"]
    assert options["ray_options"]["num_cpus"] == 0.5
    assert options["ray_options"]["runtime_env"] == {"env_vars": {"RD_TEST_ENV": "<not recorded>"}}


def test_catch_exceptions(backend, wid):
    caught = workflow.options(catch_exceptions=True)(tasks.boom).bind("oops")
    value, error = workflow.run(caught, workflow_id=wid)
    assert value is None and isinstance(error, ValueError) and "oops" in str(error)
    ok, err = workflow.run(workflow.options(catch_exceptions=True)(tasks.add).bind(1, 1),
                           workflow_id=wid + "-ok")
    assert (ok, err) == (2, None)


def test_retry_exceptions_and_max_retries(backend, wid, tmp_path):
    path = str(tmp_path / "flaky")
    dag = workflow.options(max_retries=3, retry_exceptions=True)(tasks.flaky).bind(path, 2)
    assert workflow.run(dag, workflow_id=wid) == "ok"
    assert tasks.count(path, "call") == 3
    meta = workflow.get_metadata(wid, task_id=tasks.tid("flaky"))
    assert meta["attempts"] == 3

    path2 = str(tmp_path / "flaky2")
    no_retry = workflow.options(max_retries=3)(tasks.flaky).bind(path2, 1)
    with pytest.raises(workflow.WorkflowExecutionError):
        workflow.run(no_retry, workflow_id=wid + "-noretry")
    assert tasks.count(path2, "call") == 1  # application errors are not retried by default

    path3 = str(tmp_path / "flaky3")
    typed = workflow.options(max_retries=1, retry_exceptions=[KeyError])(tasks.flaky).bind(path3, 1)
    with pytest.raises(workflow.WorkflowExecutionError):
        workflow.run(typed, workflow_id=wid + "-typed")
    assert tasks.count(path3, "call") == 1  # RuntimeError is not in retry_exceptions


def test_checkpoint_false_reruns_on_resume(local, wid, tmp_path):
    path = str(tmp_path / "calls")
    first = workflow.options(checkpoint=False)(tasks.counted_add).bind(path, "nockpt", 1, 1)
    dag = tasks.add.bind(first, tasks.boom.bind("stop here"))
    with pytest.raises(workflow.WorkflowExecutionError):
        workflow.run(dag, workflow_id=wid)
    assert tasks.count(path, "nockpt") == 1
    with pytest.raises(workflow.WorkflowExecutionError):
        workflow.resume(wid)
    assert tasks.count(path, "nockpt") == 2  # its output was not kept, so it ran again


def test_options_as_decorator_above_ray_remote(backend, wid):
    @workflow.options(task_id="decorated", metadata={"via": "decorator"})
    @ray.remote
    def double(x):
        return 2 * x

    assert workflow.run(double.bind(21), workflow_id=wid) == 42
    assert workflow.get_metadata(wid, task_id="decorated")["user_metadata"] == {"via": "decorator"}
    assert ray.get(double.remote(1)) == 2  # still a plain Ray function outside workflows


def test_continuation_factorial(backend, wid):
    assert workflow.run(tasks.factorial.bind(10), workflow_id=wid) == 3628800
    assert workflow.get_output(wid) == 3628800


def test_continuation_100_deep(backend, wid):
    assert workflow.run(tasks.countdown.bind(100, 0), workflow_id=wid) == 100


def test_continuation_outside_a_workflow_runs_the_dag(ray_runtime):
    assert workflow.continuation(tasks.add.bind(2, 3)) == 5
    with pytest.raises(TypeError):
        workflow.continuation(5)


def test_long_task_start_is_logged_while_it_runs(backend, wid, tmp_path):
    from engine.api._init import context
    from engine.store._sync import run_sync
    from replay import TaskStatus, load_state

    gate = str(tmp_path / "gate")  # the task runs until the test has seen it RUNNING
    ref = workflow.run_async(tasks.gated.bind("x", gate), workflow_id=wid)
    deadline = time.monotonic() + 120  # a bound for a stuck engine, not a speed requirement
    while True:
        state = run_sync(load_state(context().storage, wid))
        task = state.tasks.get(tasks.tid("gated"))
        if task is not None and task.status is TaskStatus.RUNNING:
            break
        assert time.monotonic() < deadline, state.tasks
        time.sleep(0.1)
    assert task.started_at is not None and task.ended_at is None
    open(gate, "w").close()
    assert ray.get(ref) == "x"


def test_metadata_of_a_task_not_scheduled_yet_comes_from_the_dag(backend, wid, tmp_path):
    """As in 2.47, which stored every task's metadata with the submission: a task that no run
    has scheduled yet (run_async does not wait for the claim; this one waits for its input)
    has its options and metadata, and no stats; a task id the DAG lacks is still an error."""
    gate = str(tmp_path / "gate")
    upstream = tasks.gated.bind(1, gate)
    downstream = workflow.options(task_id="later", metadata={"k": "v"})(tasks.identity).bind(upstream)
    ref = workflow.run_async(downstream, workflow_id=wid)
    meta = workflow.get_metadata(wid, task_id="later")
    assert meta["user_metadata"] == {"k": "v"} and meta["stats"] == {}
    assert meta["status"] == "PENDING" and meta["attempts"] == 0
    with pytest.raises(ValueError, match="has no task 'nope'"):
        workflow.get_metadata(wid, task_id="nope")
    open(gate, "w").close()
    assert ray.get(ref) == 1
    done = workflow.get_metadata(wid, task_id="later")
    assert done["user_metadata"] == {"k": "v"} and "end_time" in done["stats"]
