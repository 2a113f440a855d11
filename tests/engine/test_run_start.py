"""How a run starts: it loads what the log says is done, then claims the log in the same
append as the first tasks' scheduled events, and launches them once that is durable."""

import concurrent.futures
import os
import signal
import time

import pytest
import ray

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


def _fan_in():
    leaves = [workflow.options(task_id=f"leaf-{i}")(tasks.add).bind(i, 1) for i in range(3)]
    return workflow.options(task_id="total")(tasks.describe).bind(*leaves)  # direct args: pipelined


def test_run_writes_the_submission_the_claim_and_the_first_tasks_in_one_append(backend, wid):
    """workflow.run hands the submission over unwritten: the manager's first append holds it."""
    assert workflow.run(_fan_in(), workflow_id=wid) == {"args": [1, 2, 3], "kwargs": {}}
    appends = _appends(wid)
    assert appends[0] == ([("WorkflowSubmitted", None), ("WorkflowRunStarted", None)]
                          + [("TaskScheduled", f"leaf-{i}") for i in range(3)])
    # The fan-in was pipelined right after the leaves were launched, in a later append.
    assert ("TaskScheduled", "total") in [event for batch in appends[1:] for event in batch]


def test_run_async_makes_the_submission_durable_before_it_returns(backend, wid):
    """run_async returns before the manager claims: its submission is an append of its own."""
    assert ray.get(workflow.run_async(_fan_in(), workflow_id=wid)) == {"args": [1, 2, 3], "kwargs": {}}
    appends = _appends(wid)
    assert appends[0] == [("WorkflowSubmitted", None)]
    assert appends[1] == [("WorkflowRunStarted", None)] + [("TaskScheduled", f"leaf-{i}") for i in range(3)]


def test_run_of_an_existing_id_resumes_it_and_runs_nothing_of_the_new_dag(backend, wid, tmp_path):
    """As in 2.47: run with a taken id is a resume of that workflow; the manager's append at
    seq 0 conflicts, so nothing of the new submission is written, and none of its tasks run."""
    assert workflow.run(tasks.add.bind(1, 1), workflow_id=wid) == 2
    before = _appends(wid)
    ran = str(tmp_path / "ran")
    assert workflow.run(tasks.counted_add.bind(ran, "new", 5, 5), workflow_id=wid) == 2  # the stored output
    assert _appends(wid) == before
    assert tasks.count(ran) == 0
    # a FAILED one is resumed from its own DAG, not the one given
    gate = str(tmp_path / "gate")
    failing = wid + "-f"
    with pytest.raises(workflow.WorkflowExecutionError):
        workflow.run(tasks.fails_until.bind(gate, 5), workflow_id=failing)
    open(gate, "w").close()
    assert workflow.run(tasks.counted_add.bind(ran, "new", 5, 5), workflow_id=failing) == 5
    assert tasks.count(ran) == 0
    assert [e for batch in _appends(failing) for e in batch].count(("WorkflowSubmitted", None)) == 1


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


def test_questions_that_overtake_the_hand_over_wait_for_it(backend, wid):
    """run_async sends the manager its run call without waiting, and Ray does not promise that
    an async actor runs one caller's calls in order: CI saw get_output_async, sent right after,
    arrive first and answer "not resumable". Here the hand-over is held back on purpose (the
    submission is durable, this process has noted it as sent, the call is not made yet): this
    process's questions wait for it (a listing shows it PENDING), and another process's (no note) reads
    the log as it is: RESUMABLE."""
    from engine.api import _workflows

    dag = workflow.options(task_id="inner")(tasks.add).bind(20, 1)
    dag = workflow.options(task_id="outer")(tasks.add).bind(dag, 21)
    wid, submission, env_values, tail = _workflows._submit_new(dag, (), {}, wid, None)
    ctx = context()
    assert workflow.get_status(wid) == workflow.RESUMABLE  # as any other process sees it
    ctx.handed_over.sent(wid)
    assert (wid, workflow.PENDING) in workflow.list_all()
    assert wid not in dict(workflow.list_all(workflow.RESUMABLE))
    output = workflow.get_output_async(wid)
    inner = workflow.get_output_async(wid, task_id="inner")
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        status = pool.submit(workflow.get_status, wid)  # waits for the hand-over, as 2.47 answered
        ready, _ = ray.wait([output, inner], num_returns=2, timeout=1.0)
        assert ready == [], "an output wait answered before the hand-over arrived"
        assert not status.done(), f"get_status answered {status.result()} before the hand-over arrived"
        _workflows._start(wid, submission, env_values, tail)  # the hand-over arrives
        assert status.result(timeout=120) in (workflow.RUNNING, workflow.SUCCESSFUL)
    assert ray.get(output) == 42
    assert ray.get(inner) == 21
    assert workflow.get_status(wid) == workflow.SUCCESSFUL
    # A question may be asked from a log read before the run began, and reach the manager after
    # the run ended: the manager must know the hand-over came (it ran, and is gone from its
    # tables), not wait for one. A hand-over that never comes is waited for (with a bound):
    # asked first, it must still answer after the one that came.
    manager = ctx.manager_for(wid)
    never = manager.live_status.remote(f"{wid}-never-handed-over", True)
    came = manager.live_status.remote(wid, True)
    ready, _ = ray.wait([never, came], num_returns=1, timeout=120)
    assert ready == [came] and ray.get(came) is None


def test_a_submission_whose_hand_over_never_came_runs_when_its_output_is_asked_for(backend, wid):
    """A driver that died after run_async made the submission durable, before the manager got
    the hand-over, leaves a log with the submission only, which names this cluster's manager:
    once that hand-over is overdue, a get_output (here, from a process that sent nothing) has
    the manager take it on, with no resume; the manager's restart, or the next cluster, would
    too (test_recovery.py)."""
    from engine.runtime._recovery import HANDOVER_GRACE_S

    _lost_hand_over(wid, HANDOVER_GRACE_S + 5)  # a driver that died a while ago
    # (a manager still in its start-up recovery may take it on first: either way it runs once)
    assert workflow.get_output(wid) == 21
    assert workflow.get_status(wid) == workflow.SUCCESSFUL
    state = run_sync(load_state(context().storage, wid))
    assert state.submission.owner == ray.get(context().manager_for(wid).describe.remote())["owner"]
    assert len(state.run_ids) == 1


def _lost_hand_over(wid, age_s):
    """The log a driver leaves that died ``age_s`` ago, after run_async made its submission
    durable and before the hand-over reached the manager."""
    import msgspec

    from engine.api import _workflows
    from replay import encode_event

    submission, _env = _workflows._submission(tasks.add.bind(20, 1), wid, {}, ((), {}))
    event = msgspec.structs.replace(decode_event(submission), ts=time.time() - age_s)
    run_sync(context().storage.append(wid, [encode_event(event)], 0))


def _kill_9_the_manager(wid):
    manager = context().manager_for(wid)
    os.kill(ray.get(manager.describe.remote())["pid"], signal.SIGKILL)  # Ray restarts it


def _wait_until_successful(wid, bound_s):
    deadline = time.monotonic() + bound_s
    while workflow.get_status(wid) != workflow.SUCCESSFUL:  # (no get_output, no resume)
        assert time.monotonic() < deadline, f"{wid} is still {workflow.get_status(wid)}"
        time.sleep(0.2)


def test_a_restarted_manager_takes_on_a_submission_whose_hand_over_never_came(local, wid):
    """kill -9 of the manager: Ray restarts it, and its start-up recovery takes on a submission
    handed to it whose hand-over is overdue, with nobody asking."""
    from engine.runtime._recovery import HANDOVER_GRACE_S

    _lost_hand_over(wid, HANDOVER_GRACE_S + 5)
    _kill_9_the_manager(wid)
    _wait_until_successful(wid, 180)
    assert workflow.get_output(wid) == 21


@pytest.mark.slow
def test_a_restarted_manager_takes_on_a_lost_hand_over_once_it_is_overdue(local, wid):
    """The same with a submission made just now: the restarted manager waits for a hand-over
    that may still come, then (none came) takes the workflow on by itself."""
    from engine.runtime._recovery import HANDOVER_GRACE_S

    _lost_hand_over(wid, 0)
    _kill_9_the_manager(wid)
    time.sleep(5)
    assert workflow.get_status(wid) == workflow.RESUMABLE  # not yet: its hand-over may come
    _wait_until_successful(wid, HANDOVER_GRACE_S + 180)
    assert workflow.get_output(wid) == 21


def test_the_hand_over_notes_are_bounded_and_dropped_once_claimed():
    from engine.api._handovers import HandOvers
    from replay import WorkflowState, WorkflowStatus

    notes = HandOvers(limit=3)
    for i in range(5):
        notes.sent(f"w{i}")
    assert notes.ids() == ["w2", "w3", "w4"]  # the oldest go first
    pending, claimed = WorkflowState(status=WorkflowStatus.PENDING), WorkflowState(status=WorkflowStatus.RUNNING)
    assert notes.in_flight("w3", pending) and not notes.in_flight("w0", pending)
    assert not notes.in_flight("w3", claimed)  # the log shows the claim: the note goes
    assert notes.ids() == ["w2", "w4"]


async def test_a_wide_fan_in_is_checked_in_linear_time():
    """A fan-in is asked "are your inputs usable?" each time one of them is launched or
    completes. Scanning every input each time made a 100,000-task fan-out quadratic (905 s vs
    47.5 s plain Ray; 30,000 tasks: 69 s, 28 s once fixed). Counted here, not timed: asking
    after each of N inputs gets a source must look at O(N) inputs in all, and the answer
    must still be right when an input that was usable fails."""
    import asyncio
    from types import SimpleNamespace

    from engine.runtime._run import FAILED, OK, Source, WorkflowRun

    class Counting(WorkflowRun):
        looked = 0

        def _source(self, task_id):
            Counting.looked += 1
            return super()._source(task_id)

    width = 2_000
    run = Counting.__new__(Counting)  # the bookkeeping only: no storage, no Ray
    run.tasks = {"sum": SimpleNamespace(deps=[f"leaf-{i}" for i in range(width)], ref_deps=frozenset())}
    run.sources, run.alias, run._unusable_from = {}, {}, {}
    loop = asyncio.get_running_loop()
    for i in range(width):
        run.sources[f"leaf-{i}"] = Source(f"leaf-{i}", value_ref=object(), settled=loop.create_future())
        deps = run._usable_deps("sum")
        assert (deps is None) == (i < width - 1)
    assert [d.task_id for d in deps] == [f"leaf-{i}" for i in range(width)]
    assert Counting.looked <= 4 * width, f"{Counting.looked} looks for {width} inputs: quadratic again"
    run.sources["leaf-7"].settled.set_result(FAILED)  # usable before, not any more
    assert run._usable_deps("sum") is None
    retried = Source("leaf-7", value_ref=object(), settled=loop.create_future())
    retried.settled.set_result(OK)
    run.sources["leaf-7"] = retried
    assert run._usable_deps("sum") is not None


def test_run_with_a_full_queue_writes_nothing_and_a_queued_run_writes_its_submission_first(
        ray_runtime, tmp_path, wid):
    """workflow.run hands its submission over unwritten; with max_running_workflows busy the
    manager writes it alone (the run is PENDING, so it must be durable), and with the queue full
    it writes nothing and raises, but a taken id is still resumed (its output returned)."""
    workflow.init(f"file://{tmp_path}/queued", max_running_workflows=1, max_pending_workflows=1)
    assert workflow.run(tasks.add.bind(20, 1), workflow_id=wid + "-done") == 21
    gate = str(tmp_path / "gate")
    first = workflow.run_async(tasks.gated.bind("a", gate), workflow_id=wid + "-a")
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        queued = pool.submit(workflow.run, tasks.identity.bind("b"), workflow_id=wid + "-b")
        deadline = time.monotonic() + 60
        while workflow.list_all("PENDING") != [(wid + "-b", "PENDING")]:
            assert time.monotonic() < deadline, workflow.list_all()
            time.sleep(0.02)
        assert _appends(wid + "-b") == [[("WorkflowSubmitted", None)]]
        with pytest.raises(workflow.WorkflowQueueFullError):
            workflow.run(tasks.identity.bind("c"), workflow_id=wid + "-c")
        with pytest.raises(ValueError, match="does not exist"):
            workflow.get_status(wid + "-c")
        # a taken id is a resume: the finished one answers with its output, the queue untouched
        assert workflow.run(tasks.identity.bind("x"), workflow_id=wid + "-done") == 21
        open(gate, "w").close()
        assert queued.result(timeout=120) == "b"
    assert ray.get(first) == "a"
    assert [batch[0] for batch in _appends(wid + "-b")][:2] == [("WorkflowSubmitted", None),
                                                                ("WorkflowRunStarted", None)]


def test_run_survives_its_manager_killed_after_writing_the_submission(fresh_backend, wid, tmp_path):
    """kill -9 of the manager once its append at seq 0 (submission and claim) is durable: Ray
    sends workflow.run's call again to the restarted manager, whose append at seq 0 conflicts;
    the driver then resumes the workflow, which the new manager took on, and gets its output.
    The log holds one submission."""
    gate = str(tmp_path / "gate")
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        result = pool.submit(workflow.run, tasks.gated.bind("survived", gate), workflow_id=wid)
        deadline = time.monotonic() + 60
        while not run_sync(context().storage.exists(wid)):
            assert time.monotonic() < deadline and not result.done(), "the submission never came"
            time.sleep(0.02)
        os.kill(ray.get(context().manager.describe.remote())["pid"], signal.SIGKILL)
        open(gate, "w").close()
        assert result.result(timeout=300) == "survived"
    events = [e for batch in _appends(wid) for e in batch]
    assert events.count(("WorkflowSubmitted", None)) == 1
    assert events.count(("WorkflowRunStarted", None)) == 2  # the killed run's claim, the new one's
