"""The pure fold: events in, :class:`WorkflowState` out. No I/O, ever.

It is the only code that knows what events mean. The engine (live status,
resume), ``list_all`` and the replay tool all call it. Every event is checked
against the state it applies to; an illegal transition raises
:class:`IllegalTransitionError` naming the event's seq.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import chain, count

from . import _events as ev
from ._gc import gc_paused
from ._state import TaskError, TaskState, TaskStatus, WaitState, WorkflowState, WorkflowStatus

_OPEN_TASK = (TaskStatus.SCHEDULED, TaskStatus.RUNNING)
_RESUMABLE_FROM = (WorkflowStatus.PENDING, WorkflowStatus.RUNNING, WorkflowStatus.FAILED)
_RUNNING = WorkflowStatus.RUNNING
_SUCCESSFUL = WorkflowStatus.SUCCESSFUL
_CANCELED = WorkflowStatus.CANCELED
_TASK_SCHEDULED = TaskStatus.SCHEDULED
_TASK_RUNNING = TaskStatus.RUNNING
_TASK_SUCCESSFUL = TaskStatus.SUCCESSFUL


class IllegalTransitionError(ValueError):
    """An event that cannot follow the state before it (or a gap in the seqs)."""

    def __init__(self, seq: int, event: ev.Event | None, reason: str):
        self.seq = seq
        self.event = event
        self.reason = reason
        tag = type(event).__struct_config__.tag if event is not None else "?"
        super().__init__(f"illegal event at seq {seq} ({tag}): {reason}")


def fold(events: Iterable[tuple[int, ev.Event]] | Iterable[ev.Event],
         state: WorkflowState | None = None) -> WorkflowState:
    """Apply ``events`` (bare, or ``(seq, event)`` pairs) to ``state`` or a fresh state."""
    state = state if state is not None else WorkflowState()
    items = iter(events)
    first = next(items, None)
    if first is None:
        return state
    with gc_paused():
        if isinstance(first, tuple):
            _apply_pairs(state, chain((first,), items))
        else:
            _apply_pairs(state, zip(count(state.last_seq + 1), chain((first,), items)))
    return state


def apply(state: WorkflowState, event: ev.Event, seq: int | None = None) -> WorkflowState:
    """Apply one event in place and return ``state``.

    Args:
        seq: the event's seq; None means "the next one". A seq other than the
            next one is a gap (or a repeat) and is illegal.
    """
    _apply_pairs(state, ((state.last_seq + 1 if seq is None else seq, event),))
    return state


def apply_run(state: WorkflowState, first_seq: int, events: Iterable[ev.Event]) -> WorkflowState:
    """Apply ``events`` in place as the seqs ``first_seq, first_seq + 1, ...`` (a batch as stored)."""
    _apply_pairs(state, zip(count(first_seq), events))
    return state


def _apply_pairs(state: WorkflowState, pairs: Iterable[tuple[int, ev.Event]]) -> None:
    """The rules every event passes, then its handler: the one loop every replay runs.

    Hot: one iteration per event of every replay, so the checks are written
    out here rather than made through WorkflowState's properties (same rules
    as next_seq / is_terminal), and last_seq / last_ts are stored once, at the
    end (or at the event that raised).
    """
    handlers = _HANDLERS
    expected = state.last_seq + 1
    last = None
    try:
        for seq, event in pairs:
            if seq != expected:
                raise IllegalTransitionError(seq, event, f"sequence gap: expected seq {expected}")
            handler = handlers.get(type(event))
            if handler is None:
                raise IllegalTransitionError(seq, event, f"no rule for event type {type(event).__name__}")
            if state.status is not _RUNNING:
                _check_workflow_accepts(state, event, seq, handler)
            handler(state, event, seq)
            last = event
            expected = seq + 1
    finally:
        if last is not None:
            state.last_seq = expected - 1
            state.last_ts = last.ts


def _check_workflow_accepts(state: WorkflowState, event: ev.Event, seq: int, handler) -> None:
    """Before submission only workflow.submitted; after the end nothing."""
    status = state.status
    if status is None:
        if handler is not _submitted:
            raise IllegalTransitionError(seq, event, "the first event must be workflow.submitted")
    elif status is _SUCCESSFUL or status is _CANCELED:
        raise IllegalTransitionError(seq, event, f"the workflow already ended ({status})")


def _fail(seq: int, event: ev.Event, reason: str) -> None:
    raise IllegalTransitionError(seq, event, reason)


def _require_running(state: WorkflowState, event: ev.Event, seq: int) -> None:
    if state.status is not WorkflowStatus.RUNNING:
        _fail(seq, event, f"task events need a RUNNING workflow, it is {state.status}")


def _task(state: WorkflowState, event: ev.Event, seq: int, task_id: str) -> TaskState:
    task = state.tasks.get(task_id)
    if task is None:
        _fail(seq, event, f"task {task_id!r} was never scheduled")
    return task


def _submitted(state: WorkflowState, e: ev.WorkflowSubmitted, seq: int) -> None:
    if state.status is not None:
        _fail(seq, e, "the workflow was already submitted")
    state.workflow_id = e.workflow_id
    state.submission = e
    state.status = WorkflowStatus.PENDING
    state.start_time = e.ts


def _run_started(state: WorkflowState, e: ev.WorkflowRunStarted, seq: int) -> None:
    if state.status not in _RESUMABLE_FROM:
        _fail(seq, e, f"a {state.status} workflow cannot be run")
    state.status = WorkflowStatus.RUNNING
    state.run_ids.append(e.run_id)
    state.owner, state.owner_cluster, state.owner_application = e.owner, e.cluster, e.application
    state.failed_task_id = state.error_type = state.error_message = None
    state.end_time = None
    state.run_start_time = e.ts


def _scheduled(state: WorkflowState, e: ev.TaskScheduled, seq: int) -> None:
    if state.status is not _RUNNING:
        _require_running(state, e, seq)
    task = state.tasks.get(e.task_id)
    if task is None:  # the common case: a task's first scheduling
        state.tasks[e.task_id] = TaskState(
            task_id=e.task_id, name=e.name, attempt=e.attempt, task_options=e.task_options,
            user_metadata=e.user_metadata, parent_task_id=e.parent_task_id, deps=e.deps, scheduled_at=e.ts)
        return
    if task.status is TaskStatus.CONTINUED or (
        task.status is TaskStatus.SUCCESSFUL and not _unsaved_output(task)
    ):
        _fail(seq, e, f"task {e.task_id!r} is already {task.status}; it must not run again")
    if e.name != task.name:
        _fail(seq, e, f"task {e.task_id!r} was {task.name!r}, now {e.name!r}")
    task.status = TaskStatus.SCHEDULED
    task.attempt = e.attempt
    task.task_options = e.task_options
    task.user_metadata = e.user_metadata
    task.parent_task_id = e.parent_task_id
    task.deps = e.deps
    task.scheduled_at = e.ts
    task.ended_at = None


def _forked(state: WorkflowState, e: ev.TaskForked, seq: int) -> None:
    """A completion a fork takes over from its source: only in a fork's log, before any run."""
    submission = state.submission
    if submission is None or submission.forked_from is None:
        _fail(seq, e, "task.forked belongs in a fork's log (its submission names the source)")
    if state.status is not WorkflowStatus.PENDING or state.run_ids:
        _fail(seq, e, f"task.forked must come before the fork's first run, it is {state.status}")
    if e.task_id in state.tasks:
        _fail(seq, e, f"task {e.task_id!r} was already forked")
    state.tasks[e.task_id] = TaskState(
        task_id=e.task_id, name=e.name, status=TaskStatus.SUCCESSFUL, task_options=e.task_options,
        user_metadata=e.user_metadata, parent_task_id=e.parent_task_id, deps=e.deps,
        scheduled_at=e.ts, output=e.output, forked=True)


def _unsaved_output(task: TaskState) -> bool:
    """A task run with checkpoint=False completed without a stored output; it may run again."""
    return task.output is not None and task.output.codec == "none"


def _started(state: WorkflowState, e: ev.TaskStarted, seq: int) -> None:
    task = state.tasks.get(e.task_id)
    if state.status is not _RUNNING or task is None:
        _require_running(state, e, seq)
        task = _task(state, e, seq, e.task_id)
    if task.status is not _TASK_SCHEDULED or e.attempt != task.attempt:
        _fail(seq, e, f"task {e.task_id!r} attempt {e.attempt} started while {task.status} "
                      f"(attempt {task.attempt})")
    task.status = _TASK_RUNNING
    task.started_at = ts = e.ts
    task.spans += ((e.attempt, ts, None),)


def _close_span(task: TaskState, ts: float) -> None:
    task.ended_at = ts
    spans = task.spans
    if spans and spans[-1][2] is None:
        attempt, start, _ = spans[-1]
        task.spans = (*spans[:-1], (attempt, start, ts))


def _check_open(task: TaskState, e: ev.Event, seq: int, attempt: int, verb: str) -> None:
    if task.status not in _OPEN_TASK:
        _fail(seq, e, f"task {task.task_id!r} {verb} while {task.status}")
    if attempt != task.attempt:
        _fail(seq, e, f"task {task.task_id!r} {verb} for attempt {attempt}, "
                      f"but attempt {task.attempt} is the current one")


def _completed(state: WorkflowState, e: ev.TaskCompleted, seq: int) -> None:
    task = state.tasks.get(e.task_id)
    if state.status is not _RUNNING or task is None:
        _require_running(state, e, seq)
        task = _task(state, e, seq, e.task_id)
    if (task.status is not _TASK_RUNNING and task.status is not _TASK_SCHEDULED) or e.attempt != task.attempt:
        _check_open(task, e, seq, e.attempt, "completed")
    if task.wait is not None and task.wait.kind == "event" and task.wait.received is None:
        _fail(seq, e, f"task {e.task_id!r} waits for an event and completed before receiving it")
    task.status = _TASK_SUCCESSFUL
    task.output = e.output
    _close_span(task, e.ts)
    if state.waiting_on:
        _resolve_continuations(state, task, e.ts)


def _resolve_continuations(state: WorkflowState, done: TaskState, ts: float) -> None:
    """A sub-DAG's output task finished: the task(s) that continued into it are done too."""
    while (waiting_id := state.waiting_on.pop(done.task_id, None)) is not None:
        waiting = state.tasks[waiting_id]
        waiting.status = TaskStatus.SUCCESSFUL
        waiting.output = done.output
        waiting.ended_at = ts
        done = waiting


def _failed(state: WorkflowState, e: ev.TaskFailed, seq: int) -> None:
    _require_running(state, e, seq)
    task = _task(state, e, seq, e.task_id)
    _check_open(task, e, seq, e.attempt, "failed")
    task.status = TaskStatus.FAILED
    task.errors += (TaskError(e.attempt, e.error_type, e.message, e.traceback, e.ts, e.error),)
    _close_span(task, e.ts)


def _retried(state: WorkflowState, e: ev.TaskRetried, seq: int) -> None:
    _require_running(state, e, seq)
    task = _task(state, e, seq, e.task_id)
    if task.status is not TaskStatus.FAILED:
        _fail(seq, e, f"task {e.task_id!r} retried while {task.status}, not FAILED")
    if e.attempt != task.attempt + 1:
        _fail(seq, e, f"task {e.task_id!r} retry attempt {e.attempt} does not follow {task.attempt}")
    task.status = TaskStatus.SCHEDULED
    task.attempt = e.attempt


def _continued(state: WorkflowState, e: ev.TaskContinued, seq: int) -> None:
    _require_running(state, e, seq)
    task = _task(state, e, seq, e.task_id)
    _check_open(task, e, seq, e.attempt, "continued")
    if e.output_task_id in state.waiting_on:
        _fail(seq, e, f"task {e.output_task_id!r} already carries another task's output")
    task.status = TaskStatus.CONTINUED
    task.continuation = e.dag
    task.continuation_output_task_id = e.output_task_id
    task.continuation_task_ids = e.task_ids
    _close_span(task, e.ts)
    task.ended_at = None  # not done until its sub-DAG is
    state.waiting_on[e.output_task_id] = e.task_id
    sub = state.tasks.get(e.output_task_id)
    if sub is not None and sub.status is TaskStatus.SUCCESSFUL:
        _resolve_continuations(state, sub, e.ts)


def _caught(state: WorkflowState, e: ev.TaskCaught, seq: int) -> None:
    _require_running(state, e, seq)
    catcher = _task(state, e, seq, e.task_id)
    failed = _task(state, e, seq, e.failed_task_id)
    if failed.status is not TaskStatus.FAILED:
        _fail(seq, e, f"task {e.failed_task_id!r} is {failed.status}, so it has no failure to catch")
    if catcher is not failed:
        if catcher.status is not TaskStatus.CONTINUED:
            _fail(seq, e, f"task {e.task_id!r} is {catcher.status}: only the failed task itself or a "
                          "task that continued into a sub-DAG can catch")
        inner = failed
        while inner.parent_task_id != e.task_id:  # the catcher must be an ancestor
            inner = state.tasks.get(inner.parent_task_id or "")
            if inner is None:
                _fail(seq, e, f"task {e.failed_task_id!r} is not in a sub-DAG of {e.task_id!r}")
    for output_task_id in [k for k, v in state.waiting_on.items() if v == e.task_id]:
        del state.waiting_on[output_task_id]  # its sub-DAG is abandoned
    catcher.status = TaskStatus.SUCCESSFUL
    catcher.output = e.output
    catcher.caught_from = e.failed_task_id
    catcher.ended_at = e.ts
    if state.waiting_on:
        _resolve_continuations(state, catcher, e.ts)


def _wait_began(state: WorkflowState, e: ev.TimerSet | ev.EventAwaited, seq: int, kind: str) -> TaskState:
    """An attempt of a timer or event task began waiting: as task.started, for that kind of task."""
    _require_running(state, e, seq)
    task = _task(state, e, seq, e.task_id)
    if task.status is not _TASK_SCHEDULED or e.attempt != task.attempt:
        _fail(seq, e, f"task {e.task_id!r} attempt {e.attempt} began waiting while {task.status} "
                      f"(attempt {task.attempt})")
    if task.wait is not None and task.wait.kind != kind:
        _fail(seq, e, f"task {e.task_id!r} is a {task.wait.kind} wait, not a {kind} wait")
    if task.wait is None and task.spans:
        _fail(seq, e, f"task {e.task_id!r} ran as a plain task before; it cannot wait now")
    task.status = _TASK_RUNNING
    task.started_at = e.ts
    task.spans += ((e.attempt, e.ts, None),)
    return task


def _timer_set(state: WorkflowState, e: ev.TimerSet, seq: int) -> None:
    task = _wait_began(state, e, seq, "timer")
    if task.wait is None:
        task.wait = WaitState("timer", since=e.ts, deadline=e.deadline)
    else:  # a later attempt: the engine keeps the first deadline; the log says what it kept
        task.wait.deadline = e.deadline


def _event_awaited(state: WorkflowState, e: ev.EventAwaited, seq: int) -> None:
    task = _wait_began(state, e, seq, "event")
    if task.wait is None:
        task.wait = WaitState("event", since=e.ts, event_key=e.event_key, listener=e.listener)
    elif task.wait.event_key != e.event_key:
        _fail(seq, e, f"task {e.task_id!r} waited for event key {task.wait.event_key!r}, now {e.event_key!r}")


def _event_received(state: WorkflowState, e: ev.EventReceived, seq: int) -> None:
    """Exactly once: a wait receives one event, and a mailbox key goes to one task."""
    _require_running(state, e, seq)
    task = _task(state, e, seq, e.task_id)
    wait = task.wait
    if wait is None or wait.kind != "event":
        _fail(seq, e, f"task {e.task_id!r} does not wait for an event")
    if task.status is not _TASK_RUNNING or e.attempt != task.attempt:
        _fail(seq, e, f"task {e.task_id!r} attempt {e.attempt} received an event while {task.status} "
                      f"(attempt {task.attempt})")
    if wait.received is not None:
        _fail(seq, e, f"task {e.task_id!r} already received its event (at {wait.received_at})")
    if e.event_key != wait.event_key:
        _fail(seq, e, f"task {e.task_id!r} waits for event key {wait.event_key!r}, not {e.event_key!r}")
    if e.event_key is not None:
        holder = state.event_keys.get(e.event_key)
        if holder is not None and holder != e.task_id:
            _fail(seq, e, f"event key {e.event_key!r} was already delivered to task {holder!r}")
        state.event_keys[e.event_key] = e.task_id
    wait.received = e.payload
    wait.received_at = e.ts
    wait.mailbox_seq = e.mailbox_seq


def _mailbox_record(state: WorkflowState, e: ev.EventSent, seq: int) -> None:
    _fail(seq, e, "a mailbox record (mailbox.event_sent) belongs in a mailbox log, not a workflow's log")


def _cancel_requested(state: WorkflowState, e: ev.CancelRequested, seq: int) -> None:
    state.cancel_requested = True


def _succeeded(state: WorkflowState, e: ev.WorkflowSucceeded, seq: int) -> None:
    if state.status is not WorkflowStatus.RUNNING:
        _fail(seq, e, f"a {state.status} workflow cannot succeed")
    state.status = WorkflowStatus.SUCCESSFUL
    state.output = e.output
    state.end_time = e.ts


def _workflow_failed(state: WorkflowState, e: ev.WorkflowFailed, seq: int) -> None:
    if state.status is not WorkflowStatus.RUNNING:
        _fail(seq, e, f"a {state.status} workflow cannot fail")
    state.status = WorkflowStatus.FAILED
    state.failed_task_id = e.task_id
    state.error_type = e.error_type
    state.error_message = e.message
    state.end_time = e.ts


def _canceled(state: WorkflowState, e: ev.WorkflowCanceled, seq: int) -> None:
    state.status = WorkflowStatus.CANCELED
    state.end_time = e.ts


def _snapshotted(state: WorkflowState, e: ev.WorkflowSnapshotted, seq: int) -> None:
    """Compaction: the snapshot covers every event before this one, and only those."""
    if e.upto_seq != seq - 1:
        _fail(seq, e, f"a snapshot event must follow the last event it covers (it covers up to seq {e.upto_seq})")
    state.last_snapshot_seq = seq


_HANDLERS = {
    ev.WorkflowSubmitted: _submitted,
    ev.WorkflowRunStarted: _run_started,
    ev.TaskScheduled: _scheduled,
    ev.TaskStarted: _started,
    ev.TaskCompleted: _completed,
    ev.TaskFailed: _failed,
    ev.TaskRetried: _retried,
    ev.TaskContinued: _continued,
    ev.TaskCaught: _caught,
    ev.CancelRequested: _cancel_requested,
    ev.WorkflowSucceeded: _succeeded,
    ev.WorkflowFailed: _workflow_failed,
    ev.WorkflowCanceled: _canceled,
    ev.WorkflowSnapshotted: _snapshotted,
    ev.TimerSet: _timer_set,
    ev.EventAwaited: _event_awaited,
    ev.EventReceived: _event_received,
    ev.EventSent: _mailbox_record,
    ev.TaskForked: _forked,
}
