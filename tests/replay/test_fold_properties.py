"""Property tests of the fold over generated event sequences.

``legal_logs`` drives a small model of a workflow (independent of the fold:
it knows only which moves are allowed) through submission, runs, tasks
scheduled / started / completed / failed / retried / rescheduled, continuations,
waits (timers set, events awaited and received), failure and resume,
cancellation and success. The fold must accept every
such sequence, agree with itself on every prefix and whatever the batching
on disk, and reject each kind of injected illegal event at exactly its seq.
"""

from __future__ import annotations

import asyncio
import copy
import tempfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from replay import (
    CancelRequested,
    EventAwaited,
    EventReceived,
    IllegalTransitionError,
    PayloadRef,
    TaskCompleted,
    TaskContinued,
    TaskFailed,
    TaskRetried,
    TaskScheduled,
    TaskStarted,
    TimerSet,
    WorkflowCanceled,
    WorkflowFailed,
    WorkflowRunStarted,
    WorkflowState,
    WorkflowSubmitted,
    WorkflowSucceeded,
    apply,
    fold,
    load_state,
    read_events,
)
from storage_backends import LocalStorage
from tests.replay.logs import T0, write_log

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

OPEN = ("scheduled", "running")


def _ref(n: int) -> PayloadRef:
    return PayloadRef(size=n, digest=f"{n:032x}", type_name="builtins.int", inline=bytes([n % 256]) * (n % 7))


@st.composite
def legal_logs(draw, max_steps: int = 60, end: bool | None = None):
    """A legal event sequence. ``end=True`` forces it to finish (succeeded or canceled)."""
    ts = [T0]

    def tick() -> float:
        ts[0] += draw(st.sampled_from([0.0, 0.001, 0.25, 1.5]))
        return ts[0]

    events = [WorkflowSubmitted(ts=T0, workflow_id="prop", dag=_ref(1),
                                user_metadata=draw(st.sampled_from([{}, {"k": "v"}])))]
    status = "PENDING"
    tasks: dict[str, list] = {}  # task id -> [status, attempt]
    waits: dict[str, list] = {}  # wait task id -> [kind ("timer" / "event"), event key, received?]
    unscheduled_subs: list[str] = []  # continuation output tasks not scheduled yet
    counter = [0]

    def fresh() -> str:
        counter[0] += 1
        return f"t{counter[0]}"

    for _ in range(draw(st.integers(0, max_steps))):
        normal, drastic = [], []  # drastic moves (ends, failures, takeovers) are drawn less often
        if status in ("PENDING", "FAILED"):
            normal.append("run")
        if status in ("PENDING", "RUNNING", "FAILED"):
            drastic.append("cancel_requested")
            if end is not True:
                drastic.append("canceled")
        if status == "RUNNING":
            normal += ["schedule_new"] * 2 + ["schedule_sub"] * 2 * bool(unscheduled_subs) + ["schedule_wait"]
            drastic += ["run", "succeed", "workflow_failed"]
            for task_id, (t_status, _) in tasks.items():
                wait = waits.get(task_id)
                if t_status == "scheduled":
                    normal.append(("begin_wait" if wait else "start", task_id))
                if wait is not None and t_status == "running" and wait[0] == "event" and not wait[2]:
                    normal.append(("receive", task_id))
                if wait is not None and t_status in OPEN:
                    if wait[0] == "timer" or (wait[2] and t_status == "running"):
                        normal.append(("complete", task_id))
                    normal.append(("fail", task_id))
                elif t_status in OPEN:
                    normal += [("complete", task_id), ("fail", task_id), ("continue", task_id)]
                if t_status == "failed":
                    normal.append(("retry", task_id))
                if t_status in OPEN + ("failed",):
                    drastic.append(("reschedule", task_id))
        moves = normal * 15 + drastic
        if not moves:
            break
        move = draw(st.sampled_from(moves))
        kind, task_id = move if isinstance(move, tuple) else (move, None)
        t = tick()
        if kind == "run":
            events.append(WorkflowRunStarted(ts=t, run_id=f"run{len(events)}", resumed=status != "PENDING"))
            status = "RUNNING"
        elif kind == "cancel_requested":
            events.append(CancelRequested(ts=t))
        elif kind == "canceled":
            events.append(WorkflowCanceled(ts=t))
            status = "CANCELED"
            break
        elif kind == "succeed":
            if end is False:
                continue
            events.append(WorkflowSucceeded(ts=t, output=_ref(len(events))))
            status = "SUCCESSFUL"
            break
        elif kind == "workflow_failed":
            events.append(WorkflowFailed(ts=t, task_id=draw(st.sampled_from(sorted(tasks) or ["none"])),
                                         error_type="E", message="m"))
            status = "FAILED"
        elif kind == "schedule_wait":
            new_id = fresh()
            waits[new_id] = [draw(st.sampled_from(["timer", "event"])), draw(st.sampled_from([None, f"k-{new_id}"])),
                             False]
            events.append(TaskScheduled(ts=t, task_id=new_id, name="engine.wait"))
            tasks[new_id] = ["scheduled", 1]
        elif kind in ("schedule_new", "schedule_sub"):
            parent = None
            if kind == "schedule_sub":
                new_id = unscheduled_subs.pop(draw(st.integers(0, len(unscheduled_subs) - 1)))
                parent = "parent-of-" + new_id
            else:
                new_id = fresh()
            events.append(TaskScheduled(ts=t, task_id=new_id, name=f"fn.{new_id}", parent_task_id=parent))
            tasks[new_id] = ["scheduled", 1]
        else:
            task = tasks[task_id]
            if kind == "start":
                events.append(TaskStarted(ts=t, task_id=task_id, attempt=task[1]))
                task[0] = "running"
            elif kind == "begin_wait":
                wait_kind, key, _ = waits[task_id]
                if wait_kind == "timer":
                    events.append(TimerSet(ts=t, task_id=task_id, deadline=T0 + 100, attempt=task[1]))
                else:
                    events.append(EventAwaited(ts=t, task_id=task_id, attempt=task[1], event_key=key))
                task[0] = "running"
            elif kind == "receive":
                waits[task_id][2] = True
                events.append(EventReceived(ts=t, task_id=task_id, payload=_ref(len(events)), attempt=task[1],
                                            event_key=waits[task_id][1]))
            elif kind == "complete":
                events.append(TaskCompleted(ts=t, task_id=task_id, output=_ref(len(events)), attempt=task[1]))
                task[0] = "done"
            elif kind == "fail":
                events.append(TaskFailed(ts=t, task_id=task_id, error_type="E", message="m", attempt=task[1]))
                task[0] = "failed"
            elif kind == "retry":
                task[1] += 1
                events.append(TaskRetried(ts=t, task_id=task_id, attempt=task[1]))
                task[0] = "scheduled"
            elif kind == "reschedule":  # a new run picks up an unfinished task
                task[1] += 1
                name = "engine.wait" if task_id in waits else f"fn.{task_id}"
                events.append(TaskScheduled(ts=t, task_id=task_id, name=name, attempt=task[1]))
                task[0] = "scheduled"
            elif kind == "continue":
                sub = fresh()
                unscheduled_subs.append(sub)
                events.append(TaskContinued(ts=t, task_id=task_id, dag=_ref(2), output_task_id=sub,
                                            attempt=task[1]))
                task[0] = "continued"
    if end and status not in ("SUCCESSFUL", "CANCELED"):
        t = tick()
        if status == "RUNNING" and draw(st.booleans()):
            events.append(WorkflowSucceeded(ts=t, output=_ref(3)))
        else:
            events.append(WorkflowCanceled(ts=t))
    return events


def _snapshots(events) -> list[WorkflowState]:
    state, out = WorkflowState(), []
    for event in events:
        apply(state, event)
        out.append(copy.deepcopy(state))
    return out


@SETTINGS
@given(legal_logs())
def test_fold_of_every_prefix_equals_applying_events_one_by_one(events):
    snapshots = _snapshots(events)
    for k in range(1, len(events) + 1):
        assert fold(events[:k]) == snapshots[k - 1]
        assert fold(enumerate(events[:k])) == snapshots[k - 1]
    # Folding on from a snapshot is the same as folding from scratch.
    middle = len(events) // 2
    if middle:
        resumed = copy.deepcopy(snapshots[middle - 1])
        assert fold(((i, e) for i, e in enumerate(events) if i >= middle), resumed) == snapshots[-1]


@st.composite
def logs_with_batches(draw):
    events = draw(legal_logs())
    sizes, left = [], len(events)
    while left:
        size = draw(st.integers(1, min(left, 8)))
        sizes.append(size)
        left -= size
    return events, sizes


async def _load_from_disk(events, sizes):
    with tempfile.TemporaryDirectory() as root:
        await write_log(root, {}, "prop", events, sizes)
        storage = LocalStorage(root)
        state = await load_state(storage, "prop")
        pairs = [pair async for pair in read_events(storage, "prop")]
        await storage.close()
        return state, pairs


@SETTINGS
@given(logs_with_batches())
def test_state_does_not_depend_on_how_the_log_was_batched_on_disk(case):
    events, sizes = case
    state, pairs = asyncio.run(_load_from_disk(events, sizes))
    assert state == fold(events)
    assert pairs == list(enumerate(events))


# --- illegal sequences ----------------------------------------------------------------------------

def _rejected_at(events_or_pairs, seq: int) -> None:
    try:
        fold(events_or_pairs)
    except IllegalTransitionError as exc:
        assert exc.seq == seq, f"rejected at seq {exc.seq}, expected {seq}: {exc}"
    else:
        raise AssertionError(f"the fold accepted an illegal event at seq {seq}")


@SETTINGS
@given(legal_logs(), st.data())
def test_a_duplicate_completion_is_rejected_at_its_seq(events, data):
    completions = [i for i, e in enumerate(events) if isinstance(e, TaskCompleted)]
    if not completions:
        events = events[:1] + [WorkflowRunStarted(ts=T0, run_id="r"), TaskScheduled(ts=T0, task_id="x", name="f"),
                               TaskCompleted(ts=T0, task_id="x", output=_ref(1))]
        completions = [3]
    original = data.draw(st.sampled_from(completions))
    at = data.draw(st.integers(original + 1, len(events)))
    injected = events[:at] + [events[original]] + events[at:]
    _rejected_at(injected, at)


@SETTINGS
@given(legal_logs(max_steps=80), st.data())
def test_an_event_is_received_once(events, data):
    """Exactly once: a second event.received, for the same wait or for its key by another
    wait, is rejected at its seq."""
    received = [i for i, e in enumerate(events) if isinstance(e, EventReceived)]
    if not received:
        events = events[:1] + [WorkflowRunStarted(ts=T0, run_id="r"), TaskScheduled(ts=T0, task_id="x", name="f"),
                               EventAwaited(ts=T0, task_id="x", event_key="k"),
                               EventReceived(ts=T0, task_id="x", payload=_ref(1), event_key="k")]
        received = [4]
    original = events[data.draw(st.sampled_from(received))]
    state = fold(events)
    if state.status.value != "RUNNING":
        return
    if original.event_key is not None and data.draw(st.booleans()):  # the same key, to another wait
        extra = [TaskScheduled(ts=T0 + 1e4, task_id="other", name="engine.wait"),
                 EventAwaited(ts=T0 + 1e4, task_id="other", event_key=original.event_key),
                 EventReceived(ts=T0 + 1e4, task_id="other", payload=_ref(2), event_key=original.event_key)]
        _rejected_at(events + extra, len(events) + 2)
        return
    task = state.tasks[original.task_id]
    if task.status.value == "RUNNING":
        again = EventReceived(ts=T0 + 1e4, task_id=original.task_id, payload=_ref(3), attempt=task.attempt,
                              event_key=original.event_key)
        _rejected_at(events + [again], len(events))


@SETTINGS
@given(legal_logs(end=True), st.data())
def test_any_event_after_the_end_is_rejected(events, data):
    extra = data.draw(st.sampled_from([
        WorkflowRunStarted(ts=T0 + 1e4, run_id="late"),
        CancelRequested(ts=T0 + 1e4),
        WorkflowCanceled(ts=T0 + 1e4),
        WorkflowSucceeded(ts=T0 + 1e4, output=_ref(1)),
        TaskScheduled(ts=T0 + 1e4, task_id="late", name="f"),
        events[data.draw(st.integers(1, len(events) - 1))] if len(events) > 1 else CancelRequested(ts=T0),
    ]))
    _rejected_at(events + [extra], len(events))


@SETTINGS
@given(legal_logs(), st.data())
def test_a_sequence_gap_or_repeat_is_rejected_at_the_injected_seq(events, data):
    if len(events) < 2:
        events = events + [WorkflowRunStarted(ts=T0, run_id="r")]
    at = data.draw(st.integers(1, len(events) - 1))
    bad_seq = data.draw(st.one_of(st.integers(at + 1, at + 1000), st.integers(0, at - 1)))
    pairs = [(i, e) for i, e in enumerate(events[:at])] + [(bad_seq, events[at])]
    pairs += [(bad_seq + 1 + i, e) for i, e in enumerate(events[at + 1:])]
    _rejected_at(pairs, bad_seq)


@SETTINGS
@given(legal_logs(), st.data())
def test_an_event_before_submission_is_rejected_at_seq_0(events, data):
    if len(events) > 1:
        first = events[data.draw(st.integers(1, len(events) - 1))]
    else:
        first = WorkflowRunStarted(ts=T0, run_id="early")
    _rejected_at([first] + events, 0)
