"""How the driving actor learns task outcomes (engine/_arrivals.py): Ray's callback for the first
few in flight, batched polling beyond them; and a finished run freed at once, not at the next
full pass of the cyclic garbage collector."""

import asyncio
import time

import pytest
import ray

import engine as workflow
from engine.runtime._arrivals import Arrivals
from engine.api._init import context
from engine.runtime._run import FAILED, OK, Source, _ends_by_itself, _value
from engine.store._sync import run_sync
from replay import TaskStatus, load_state
from tests.engine import tasks

WIDE = Arrivals.CALLBACK_LIMIT * 6  # most of its outcomes are polled


def test_a_wide_fan_out_records_every_outcome(backend, wid):
    dag = tasks.total.bind([tasks.add.bind(i, 1) for i in range(WIDE)])
    assert workflow.run(dag, workflow_id=wid) == sum(range(1, WIDE + 1))
    state = run_sync(load_state(context().storage, wid))
    assert len(state.tasks) == WIDE + 1
    for task in state.tasks.values():
        assert task.status is TaskStatus.SUCCESSFUL and task.attempt == 1 and len(task.spans) == 1


def test_a_failure_among_polled_outcomes_names_its_task(local, wid):
    inputs = [tasks.add.bind(i, 1) for i in range(WIDE)]
    inputs.append(workflow.options(task_id="the-bad-one")(tasks.boom).bind("late and wrong"))
    with pytest.raises(workflow.WorkflowExecutionError) as info:
        workflow.run(tasks.total.bind(inputs), workflow_id=wid)
    assert info.value.task_id == "the-bad-one" and "late and wrong" in str(info.value)
    assert workflow.get_status(wid) == workflow.FAILED


async def test_the_final_value_is_taken_at_once_or_awaited(ray_runtime):
    """The run's final value is usually in the manager's store already (taken without waiting);
    one that is not yet (on another node, or still being produced) is awaited."""
    assert await _value(ray.put(7)) == 7
    assert await _value(tasks.slow.remote(8, 0.5)) == 8


async def test_only_attempts_that_could_still_run_are_cancelled():
    """When a run ends, an attempt with an input that has no value is left alone: it ends by
    itself, and a cancel at that moment can abort the manager inside Ray (see _ends_by_itself)."""
    loop = asyncio.get_running_loop()

    def source(result=None, deps=()):
        settled = loop.create_future()
        if result is not None:
            settled.set_result(result)
        return Source("t", None, settled, list(deps))

    failed, ok, running = source(FAILED), source(OK), source()
    assert _ends_by_itself(source(deps=[ok, failed]))
    assert not _ends_by_itself(source(deps=[ok, running]))
    assert not _ends_by_itself(source())


def test_failures_with_tasks_queued_behind_them_leave_the_manager_alive(backend, wid):
    """The CI failure that _ends_by_itself fixes: a task fails while the next one is queued
    behind it. Twenty in a row, on one manager, which must still be the same actor after."""
    manager = context().manager._actor_id
    for i in range(20):
        with pytest.raises(workflow.WorkflowExecutionError) as info:
            workflow.run(tasks.slow.bind(tasks.boom.bind("no"), 30.0), workflow_id=f"{wid}-{i}")
        assert info.value.task_id == tasks.tid("boom")
    assert context().manager._actor_id == manager
    assert ray.get(context().manager.live_status.remote(f"{wid}-19")) is None  # it answers


def _runs_alive(manager, workflow_id: str) -> int:
    def count(self):
        import gc

        from engine.runtime._run import WorkflowRun
        return sum(isinstance(o, WorkflowRun) and o.workflow_id == workflow_id for o in gc.get_objects())
    return ray.get(manager.__ray_call__.remote(count))


@pytest.mark.parametrize("ending", ["succeeds", "fails"])
def test_a_finished_run_is_freed_without_the_cyclic_collector(local, wid, ending):
    """A reference cycle through a run would keep every ObjectRef it held (and so the objects
    in Ray's store) alive until the collector's next full pass."""
    manager = context().manager
    ray.get(manager.__ray_call__.remote(lambda self: __import__("gc").disable()))
    try:
        inputs = [tasks.add.bind(i, 1) for i in range(WIDE)]
        if ending == "succeeds":
            assert workflow.run(tasks.total.bind(inputs), workflow_id=wid) == sum(range(1, WIDE + 1))
        else:
            inputs.append(tasks.boom.bind("no"))
            with pytest.raises(workflow.WorkflowExecutionError):
                workflow.run(tasks.total.bind(inputs), workflow_id=wid)
        deadline = time.monotonic() + 120  # a bound for a leak, not a speed test
        while _runs_alive(manager, wid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _runs_alive(manager, wid) == 0, ray.get(manager.__ray_call__.remote(_holders_of_run, wid))
    finally:
        ray.get(manager.__ray_call__.remote(lambda self: __import__("gc").enable()))


def _holders_of_run(self, workflow_id: str) -> list[str]:
    """What still refers to the run (three levels up), to say which cycle kept it."""
    import gc

    from engine.runtime._run import WorkflowRun
    runs = [o for o in gc.get_objects() if isinstance(o, WorkflowRun) and o.workflow_id == workflow_id]
    found, seen, frontier = [], {id(runs)}, [(run, 0) for run in runs]
    while frontier:
        obj, depth = frontier.pop()
        for holder in gc.get_referrers(obj):
            if id(holder) in seen or holder is frontier or depth >= 3:
                continue
            seen.add(id(holder))
            code = getattr(holder, "f_code", None)
            name = f"frame {code.co_name} line {holder.f_lineno}" if code else type(holder).__name__
            found.append("  " * depth + name)
            frontier.append((holder, depth + 1))
    return found[:40]
