"""workflow.fork and workflow.check, on local storage and S3 (moto over HTTP), on a real Ray.

Side effects are counted in files (tests/engine/fork_tasks.py): a fork must run exactly the
tasks the reuse rule says, and ``check`` must predict exactly those.
"""

from __future__ import annotations

import os
import time

import pytest

import engine as workflow
from engine.api._init import context
from engine.store._sync import run_sync
from replay import TaskForked, load_state, read_events
from tests.engine import fork_tasks as ft

ALL = "abcde"


def _counts(log_dir):
    return {n: ft.ran(log_dir, n) for n in ALL}


def _failed_source(log_dir, wid):
    """The pipeline, failed at c (a, b, e completed; d never ran)."""
    open(os.path.join(log_dir, "fail-c"), "w").close()
    with pytest.raises(workflow.WorkflowExecutionError):
        workflow.run(ft.pipeline(log_dir), workflow_id=wid)
    os.remove(os.path.join(log_dir, "fail-c"))
    assert _counts(log_dir) == {"a": 1, "b": 1, "c": 1, "d": 0, "e": 1}


def _events(wid):
    async def read():
        return [e async for _, e in read_events(context().storage, wid)]
    return run_sync(read())


@pytest.fixture
def log_dir(tmp_path):
    path = tmp_path / "runs"
    path.mkdir()
    return str(path)


def test_fork_from_the_failing_task_reruns_only_it_and_downstream(backend, wid, log_dir):
    _failed_source(log_dir, wid)
    out = workflow.fork(wid, f"{wid}-f1")  # default: what had not completed (c, then d)
    assert out["name"] == "d" and out["inputs"] == ["c", "e"]
    assert _counts(log_dir) == {"a": 1, "b": 1, "c": 2, "d": 1, "e": 1}
    assert workflow.get_status(f"{wid}-f1") == workflow.SUCCESSFUL
    assert workflow.get_status(wid) == workflow.FAILED  # the source stays as it was

    out = workflow.fork(wid, f"{wid}-f2", from_task="b")  # b completed, but is re-run, and c, d after it
    assert out["name"] == "d"
    assert _counts(log_dir) == {"a": 1, "b": 2, "c": 3, "d": 2, "e": 1}

    # The fork records its origin, and shares (does not copy) the outputs it reused.
    events = _events(f"{wid}-f2")
    origin = events[0].forked_from
    assert (origin.workflow_id, origin.from_task, origin.new_dag) == (wid, "b", False)
    assert origin.seq == run_sync(load_state(context().storage, wid)).last_seq
    forked = [e for e in events if isinstance(e, TaskForked)]
    assert sorted(e.task_id for e in forked) == ["a", "e"]
    for e in forked:
        assert e.output.log == wid and e.output.blob
        assert not run_sync(context().storage.blob_exists(f"{wid}-f2", e.output.blob))
    assert workflow.get_output(f"{wid}-f2", task_id="a")["name"] == "a"
    assert len(workflow.get_output(f"{wid}-f2", task_id="a")["pad"]) == ft.PAD


def test_fork_with_new_code_runs_the_changed_part_and_check_predicted_it(backend, wid, log_dir):
    assert workflow.run(ft.pipeline(log_dir), workflow_id=wid)["name"] == "d"
    before = _counts(log_dir)
    new_dag = ft.pipeline(log_dir, fn_c=ft.step_v2)
    plan = workflow.check(new_dag, wid)
    assert not plan.ok and plan.reused == ["a", "b", "e"]
    assert plan.rerun["c"] == "function renamed: tests.engine.fork_tasks.step -> tests.engine.fork_tasks.step_v2"
    assert plan.rerun["d"] == "its input c runs again"

    out = workflow.fork(wid, f"{wid}-v2", dag=new_dag)
    assert out["inputs"] == ["c-v2", "e"]
    after = _counts(log_dir)
    ran = {n for n in ALL if after[n] != before[n]}
    assert ran == set(plan.rerun) == {"c", "d"}  # the check said exactly what the fork did
    assert _events(f"{wid}-v2")[0].forked_from.new_dag


def test_fork_with_new_arguments(backend, wid, log_dir):
    workflow.run(ft.pipeline(log_dir, big=False), workflow_id=wid)
    new_dag = ft.pipeline(log_dir, c_arg="c2", big=False)
    plan = workflow.check(new_dag, wid)
    assert plan.rerun == {"c": "arguments changed", "d": "its input c runs again"}
    before = _counts(log_dir)
    assert workflow.fork(wid, f"{wid}-args", dag=new_dag)["inputs"] == ["c2", "e"]
    after = _counts(log_dir)
    assert {n for n in ALL if after[n] != before[n]} == {"d"} and ft.ran(log_dir, "c2") == 1


def test_fork_of_a_running_workflow_starts_from_its_durable_prefix(backend, wid, log_dir):
    hold = os.path.join(log_dir, "hold-c")
    open(hold, "w").close()
    source = workflow.run_async(ft.pipeline(log_dir), workflow_id=wid)
    deadline = time.monotonic() + 120
    while True:  # a, b and e completed durably; c is running (held)
        state = run_sync(load_state(context().storage, wid))
        done = {t for t, task in state.tasks.items() if task.status.value == "SUCCESSFUL"}
        if {"a", "b", "e"} <= done:
            break
        assert time.monotonic() < deadline, f"the source never got past a, b, e: {done}"
        time.sleep(0.1)
    assert workflow.get_status(wid) == workflow.RUNNING
    fork = workflow.fork_async(wid, f"{wid}-live")
    os.remove(hold)
    import ray

    assert ray.get(fork)["name"] == "d" and ray.get(source)["name"] == "d"
    assert _counts(log_dir) == {"a": 1, "b": 1, "c": 2, "d": 2, "e": 1}  # c, d: once each per workflow
    assert _events(f"{wid}-live")[0].forked_from.seq < run_sync(load_state(context().storage, wid)).last_seq


def test_delete_of_the_source_keeps_what_live_forks_share(backend, wid, log_dir):
    workflow.run(ft.pipeline(log_dir), workflow_id=wid)
    workflow.fork(wid, f"{wid}-keep", from_task="c")
    workflow.fork(wid, f"{wid}-gone", from_task="c")
    workflow.delete(f"{wid}-gone")  # a deleted fork no longer counts as sharing
    storage = context().storage
    blob = next(e for e in _events(f"{wid}-keep") if isinstance(e, TaskForked) and e.task_id == "a").output.blob

    workflow.delete(wid)
    assert not run_sync(storage.exists(wid))
    assert run_sync(storage.blob_exists(f"{wid}-keep", blob))  # copied in before the source went
    assert not run_sync(storage.blob_exists(f"{wid}-gone", blob))
    assert workflow.get_output(f"{wid}-keep", task_id="a")["name"] == "a"
    assert workflow.get_output(f"{wid}-keep")["name"] == "d"

    # A fork of the fork, made after the source is gone, shares the fork's copy ...
    before = _counts(log_dir)
    workflow.fork(f"{wid}-keep", f"{wid}-keep2", from_task="d")
    assert {n for n in ALL if _counts(log_dir)[n] != before[n]} == {"d"}
    forked = {e.task_id: e.output for e in _events(f"{wid}-keep2") if isinstance(e, TaskForked)}
    assert forked["a"].log == f"{wid}-keep"
    # ... and keeps it when that fork is deleted in turn.
    workflow.delete(f"{wid}-keep")
    assert workflow.get_output(f"{wid}-keep2", task_id="a")["name"] == "a"
    assert workflow.get_output(f"{wid}-keep2", task_id="b")["inputs"] == ["a"]


def test_fork_refuses_bad_input_and_writes_nothing(local, wid, log_dir):
    _failed_source(log_dir, wid)
    storage = context().storage
    new = f"{wid}-new"
    with pytest.raises(workflow.WorkflowNotFoundError, match="'no-such-wf' does not exist"):
        workflow.fork("no-such-wf", new)
    workflow.run(ft.pipeline(log_dir, big=False), workflow_id=f"{wid}-taken")
    with pytest.raises(workflow.WorkflowForkError, match=f"a workflow '{wid}-taken' already exists; pick another"):
        workflow.fork(wid, f"{wid}-taken")
    with pytest.raises(workflow.WorkflowForkError, match="not the source's own"):
        workflow.fork(wid, wid)
    with pytest.raises(workflow.WorkflowForkError, match=r"has no task 'zz' \(its tasks: a, b, c, d, e\)"):
        workflow.fork(wid, new, from_task="zz")
    with pytest.raises(workflow.WorkflowForkError, match="task 'd' has no recorded attempt .* fork without from_task"):
        workflow.fork(wid, new, from_task="d")
    with pytest.raises(workflow.WorkflowForkError, match="task 'e' is not a task of the DAG given to fork"):
        workflow.fork(wid, new, from_task="e", dag=ft.default_ids(log_dir))
    with pytest.raises(TypeError, match="dag must be a DAG"):
        workflow.fork(wid, new, dag="not a dag")
    with pytest.raises(ValueError, match="workflow id"):
        workflow.fork(wid, "bad/id")
    assert not run_sync(storage.exists(new))


def test_check_names_renamed_changed_and_gone_tasks(local, wid, log_dir):
    workflow.run(ft.default_ids(log_dir), workflow_id=wid)  # ids: ...step, ...step_1, ...step_2
    same = workflow.check(ft.default_ids(log_dir), wid)
    assert same.ok and not same.rerun and len(same.reused) == 3

    # Renaming the function of default-id tasks changes their ids: the old ones are gone.
    import ray

    renamed = ft.step.bind(log_dir, "d", ft.step_v2.bind(log_dir, "c", ft.step.bind(log_dir, "a")))
    plan = workflow.check(renamed, wid)
    step = "tests.engine.fork_tasks.step"
    assert plan.reused == [step]
    assert plan.gone == {f"{step}_2": step}
    assert plan.rerun["tests.engine.fork_tasks.step_v2"].startswith("not in the log")
    assert any("gone from the DAG" in m for m in plan.mismatches)
    assert "function renamed" not in plan.render() and "gone" in plan.render()
    assert ray.is_initialized()

    # A task whose arguments changed, and what takes its output.
    changed = ft.step.bind(log_dir, "d", ft.step.bind(log_dir, "c", ft.step.bind(log_dir, "A")))
    plan = workflow.check(changed, wid)
    assert plan.rerun == {step: "arguments changed", f"{step}_1": f"its input {step} runs again",
                          f"{step}_2": f"its input {step}_1 runs again"}
    assert len(plan.mismatches) == 3 and not plan.ok

    # A fork from a task: that task and what follows are expected to run, not mismatches.
    assert workflow.check(ft.default_ids(log_dir), wid, from_task=f"{step}_1").ok


def test_check_of_the_submitted_dag_predicts_what_resume_runs(backend, wid, log_dir):
    _failed_source(log_dir, wid)
    plan = workflow.check(ft.pipeline(log_dir), wid)  # the DAG it was submitted with
    assert plan.ok and plan.reused == ["a", "b", "e"] and set(plan.rerun) == {"c", "d"}
    before = _counts(log_dir)
    assert workflow.resume(wid)["name"] == "d"
    after = _counts(log_dir)
    assert {n for n in ALL if after[n] != before[n]} == set(plan.rerun)


def test_fork_of_a_finished_workflow_without_from_task_runs_nothing(local, wid, log_dir):
    workflow.run(ft.pipeline(log_dir, big=False), workflow_id=wid)
    before = _counts(log_dir)
    assert workflow.fork(wid, f"{wid}-copy")["name"] == "d"
    assert _counts(log_dir) == before
    assert all(task.forked for task in run_sync(load_state(context().storage, f"{wid}-copy")).tasks.values())


def test_fork_from_a_task_inside_a_continuation_reruns_its_top_level_task(local, wid, log_dir):
    out = workflow.run(ft.with_continuation(log_dir), workflow_id=wid)
    assert out["inputs"] == ["x-out"]
    state = run_sync(load_state(context().storage, wid))
    assert state.tasks["x-inner"].parent_task_id == "x"
    plan = workflow.check(ft.with_continuation(log_dir), wid, from_task="x-inner")
    assert plan.from_task == "x" and plan.reused == ["a"] and set(plan.rerun) == {"x", "d"}
    workflow.fork(wid, f"{wid}-f", from_task="x-inner")
    assert {n: ft.ran(log_dir, n) for n in ("a", "x", "x-inner", "x-out", "d")} == {
        "a": 1, "x": 2, "x-inner": 2, "x-out": 2, "d": 2}
    # Without from_task, the continuation's finished sub-DAG is reused with its top-level task.
    workflow.fork(wid, f"{wid}-g")
    forked = run_sync(load_state(context().storage, f"{wid}-g")).tasks
    assert {t for t, task in forked.items() if task.forked} == {"a", "x", "x-inner", "x-out", "d"}
    assert ft.ran(log_dir, "x") == 2


def test_an_interrupted_delete_refuses_forks_until_it_is_run_again(backend, wid, log_dir):
    from engine.store import _forks

    workflow.run(ft.pipeline(log_dir), workflow_id=wid)
    workflow.fork(wid, f"{wid}-a", from_task="d")
    storage = context().storage
    run_sync(_forks.hand_over(storage, wid))  # a delete that stopped after its first step (a crash)
    with pytest.raises(workflow.WorkflowError, match=f"run `ray-durable delete {wid}` again"):
        workflow.fork(wid, f"{wid}-b", from_task="d")
    assert not run_sync(storage.exists(f"{wid}-b"))
    workflow.delete(wid)  # run again: finishes
    assert workflow.get_output(f"{wid}-a", task_id="b")["name"] == "b"
    assert workflow.fork(f"{wid}-a", f"{wid}-c", from_task="d")["name"] == "d"


def test_a_dropped_source_refuses_forks_and_its_forks_keep_their_copies(local, wid, log_dir):
    from engine.store import _forks

    workflow.run(ft.pipeline(log_dir), workflow_id=wid)
    workflow.fork(wid, f"{wid}-a", from_task="d")
    storage = context().storage
    blob = next(e for e in _events(f"{wid}-a") if isinstance(e, TaskForked) and e.task_id == "b").output.blob
    run_sync(_forks.hand_over(storage, wid, reason="drop"))  # what dropping its outputs does first
    assert run_sync(storage.blob_exists(f"{wid}-a", blob))
    with pytest.raises(workflow.WorkflowError, match="dropped its intermediate outputs"):
        workflow.fork(wid, f"{wid}-b", from_task="d")


def test_a_fork_the_queue_refuses_leaves_nothing(ray_runtime, tmp_path, wid, log_dir):
    import queue

    import ray

    from tests.engine import tasks

    workflow.init(f"file://{tmp_path}/q", max_running_workflows=1, max_pending_workflows=0)
    workflow.run(ft.pipeline(log_dir), workflow_id=wid)
    ref = workflow.run_async(tasks.slow.bind(1, 2), workflow_id=f"{wid}-busy")
    with pytest.raises(queue.Full):
        workflow.fork(wid, f"{wid}-f", from_task="d")
    assert ray.get(ref) == 1
    assert not run_sync(context().storage.exists(f"{wid}-f"))
    from engine.store import _forks

    _, records = run_sync(_forks._records(context().storage, wid))  # so a delete of wid copies nothing for it
    assert [(r.kind, r.fork) for r in records] == [("fork", f"{wid}-f"), ("gone", f"{wid}-f")]
    assert sorted(workflow.list_all()) == [(wid, workflow.SUCCESSFUL), (f"{wid}-busy", workflow.SUCCESSFUL)]
