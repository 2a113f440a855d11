"""The event schema: every fact about a workflow, as a msgspec Struct.

Evolution rules (msgspec's, and ours):
  * every event type has an explicit tag string; a tag is never reused or
    renamed (class names may change freely);
  * a field added later gets a default, so old logs still decode;
  * a field's type never changes; a field is never removed while a log may
    hold it (unknown fields are skipped, so a newer writer's extra fields are
    harmless to an older reader);
  * an event type an older reader does not know is an error naming the tag
    (:class:`replay.UnknownEventError`), never silently misread.

Timestamps are Unix seconds (float) on every event.
"""

from __future__ import annotations

from typing import Any, Union

import msgspec


class PayloadRef(msgspec.Struct, kw_only=True, omit_defaults=True, gc=False):
    """Where a serialized payload (args, output, DAG) lives, and what it is.

    Small payloads are inlined; larger ones are blobs beside the log. The type
    name, size and digest let tools describe a payload without unpickling it.
    """

    size: int
    digest: str  # blake2b-128 hex of the serialized bytes
    type_name: str = ""  # e.g. "builtins.int"; "" if unknown
    codec: str = "cloudpickle"
    blob: str | None = None  # blob name under the workflow's log
    inline: bytes | None = None
    # The workflow whose blobs hold ``blob``, if not the log's own: a fork shares the outputs
    # it reuses with the workflow that made them (engine/store/_forks.py says how a delete of
    # that workflow keeps them). None: the log's own workflow.
    log: str | None = None


class ForkOrigin(msgspec.Struct, kw_only=True, omit_defaults=True, gc=False):
    """Where a forked workflow comes from: the source's log up to ``seq`` (its durable prefix
    when the fork was made), re-run from ``from_task`` (None: only what had not completed)."""

    workflow_id: str
    seq: int
    from_task: str | None = None
    new_dag: bool = False  # the fork runs a DAG given to fork(dag=...), not the source's


class Event(msgspec.Struct, tag_field="type", kw_only=True, omit_defaults=True, gc=False):
    """Base of every event: when it happened.

    ``gc=False``: events are never part of a reference cycle, and a replay
    decodes millions of them, so the cyclic GC need not track them.
    """

    ts: float


class WorkflowSubmitted(Event, tag="workflow.submitted"):
    workflow_id: str
    dag: PayloadRef
    user_metadata: dict[str, Any] = {}
    ray_version: str = ""
    engine_version: str = ""
    python_version: str = ""
    runtime_env: dict[str, Any] | None = None
    packages: dict[str, str] = {}
    # What workflow.run(dag, *args, **kwargs) gave the DAG's InputNode, if anything: the
    # pickled (args, kwargs) inline when small; larger ones only described (codec "none"),
    # since their values are inside the DAG's calls already.
    inputs: PayloadRef | None = None
    forked_from: ForkOrigin | None = None  # set in a fork's log (workflow.fork)
    # "output": once it succeeds, drop every payload blob but its result (run(..., keep="output")).
    keep: str = ""
    # The manager the submission is handed to, which is to claim it: its lease owner, its seat
    # and its application (as in WorkflowRunStarted; empty in logs written before these fields).
    # If that claim never comes (the driver died before its hand-over reached the manager, or
    # the cluster died with the workflow queued), that manager or its successor in the seat,
    # or once that owner's lease expired a manager of the same application, takes it on.
    owner: str = ""
    seat: str = ""
    application: str = ""


class WorkflowRunStarted(Event, tag="workflow.run_started"):
    """A driver took the workflow over (first run or a resume).

    ``owner`` is the lease holder that drives this run (a manager of one cluster; its lease
    expiry is kept beside the logs), ``cluster`` a label a person recognizes (the cluster's
    head address), ``application`` the name that cluster runs under (start-up recovery only
    picks up its own application's workflows). Empty in logs written before leases.
    """

    run_id: str
    resumed: bool = False
    owner: str = ""
    cluster: str = ""
    application: str = ""


class TaskScheduled(Event, tag="task.scheduled"):
    task_id: str
    name: str  # the function's qualified name, checked on resume
    attempt: int = 1
    task_options: dict[str, Any] = {}
    user_metadata: dict[str, Any] = {}
    parent_task_id: str | None = None  # set for tasks of a continuation
    deps: tuple[str, ...] = ()  # the tasks whose outputs it takes (2.47's "workflow_refs")


class TaskStarted(Event, tag="task.started"):
    task_id: str
    attempt: int = 1
    node_id: str = ""
    pid: int = 0


class TaskCompleted(Event, tag="task.completed"):
    task_id: str
    output: PayloadRef
    attempt: int = 1


class TaskForked(Event, tag="task.forked"):
    """(In a fork's log, after its submission and before its first run.) The task completed in
    the source workflow (``ForkOrigin``) at ``source_seq``; the fork reuses that completion as its
    own durable one and never runs the task. ``output`` may point at the source's blob
    (``PayloadRef.log``)."""

    task_id: str
    name: str
    output: PayloadRef
    source_seq: int
    task_options: dict[str, Any] = {}
    user_metadata: dict[str, Any] = {}
    parent_task_id: str | None = None
    deps: tuple[str, ...] = ()


class TaskFailed(Event, tag="task.failed"):
    task_id: str
    error_type: str
    message: str
    traceback: str = ""
    attempt: int = 1
    error: PayloadRef | None = None  # the pickled exception, when it pickles


class TaskRetried(Event, tag="task.retried"):
    task_id: str
    attempt: int  # the attempt about to run
    delay_s: float = 0.0


class TaskContinued(Event, tag="task.continued"):
    """The task returned a sub-DAG that runs in its place; its output is the sub-DAG's."""

    task_id: str
    dag: PayloadRef
    output_task_id: str  # the sub-DAG's root task, whose output becomes this task's
    attempt: int = 1
    # The sub-DAG's ids as stored in ``dag`` -> the ids they run under: the worker that built
    # it names its tasks on its own; the driving actor makes them unique in the workflow.
    task_ids: dict[str, str] = {}


class TaskCaught(Event, tag="task.caught"):
    """``task_id`` (catch_exceptions) catches the failure of ``failed_task_id``: itself, or a task
    of the sub-DAG it continued into (as ray.workflow 2.47 looked up the catcher). Its output
    is ``(None, exception)``; the rest of that sub-DAG is abandoned."""

    task_id: str
    failed_task_id: str
    output: PayloadRef


class TimerSet(Event, tag="timer.set"):
    """An attempt of a timer task (``workflow.sleep``, or a wait on ``TimerListener``) began: it
    fires at ``deadline``, absolute Unix seconds. The deadline is fixed when the wait first
    begins; every later attempt (a resume) records the same one, so a resume after it fires at
    once. The timer's firing is its ``task.completed``."""

    task_id: str
    deadline: float
    attempt: int = 1


class EventAwaited(Event, tag="event.awaited"):
    """An attempt of an event task (``workflow.wait_for_event``) began waiting.

    ``event_key`` is set for a mailbox wait (``HTTPListener``: an event sent with
    ``workflow.send_event`` or over HTTP); ``listener`` names the listener type."""

    task_id: str
    attempt: int = 1
    event_key: str | None = None
    listener: str = ""


class EventReceived(Event, tag="event.received"):
    """The awaited event arrived; once this is durable the event is the workflow's, whatever
    happens next (``event_checkpointed`` runs after it, then ``task.completed``)."""

    task_id: str
    payload: PayloadRef  # the event: what the listener returned, or the payload sent to the mailbox
    attempt: int = 1
    event_key: str | None = None
    mailbox_seq: int | None = None  # where the event sits in the workflow's mailbox log


class EventSent(Event, tag="mailbox.event_sent"):
    """(In a workflow's *mailbox* log, never in its own log.) An event sent to the workflow,
    accepted once durable here; the first wait on ``event_key`` receives it."""

    workflow_id: str
    event_key: str
    payload: PayloadRef
    sender: str = ""  # who sent it, for people reading the mailbox ("http 10.0.0.7", "cli", ...)


class CancelRequested(Event, tag="workflow.cancel_requested"):
    reason: str = ""


class WorkflowSucceeded(Event, tag="workflow.succeeded"):
    output: PayloadRef


class WorkflowFailed(Event, tag="workflow.failed"):
    task_id: str
    error_type: str
    message: str


class WorkflowCanceled(Event, tag="workflow.canceled"):
    pass


class WorkflowSnapshotted(Event, tag="workflow.snapshot"):
    """The log's writer stored a snapshot of the fold as of ``upto_seq`` (always this event's seq
    minus one): compaction. A reader that finds the snapshot folds it and the events after it
    instead of the whole log (see :mod:`replay._snapshot`). It changes nothing in the fold but
    ``WorkflowState.last_snapshot_seq``; every event it covers stays in the log."""

    upto_seq: int
    digest: str  # of the snapshot's state bytes, so a reader can tell its snapshot from a stale one
    size: int  # bytes of the snapshot's state
    tasks: int = 0  # how many tasks the state held (for people reading the log)


AnyEvent = Union[
    WorkflowSubmitted,
    WorkflowRunStarted,
    TaskScheduled,
    TaskStarted,
    TaskCompleted,
    TaskFailed,
    TaskRetried,
    TaskContinued,
    TaskCaught,
    CancelRequested,
    WorkflowSucceeded,
    WorkflowFailed,
    WorkflowCanceled,
    WorkflowSnapshotted,
    TimerSet,
    EventAwaited,
    EventReceived,
    EventSent,
    TaskForked,
]

EVENT_TYPES: tuple[type[Event], ...] = AnyEvent.__args__  # type: ignore[attr-defined]
EVENT_TAGS: frozenset[str] = frozenset(t.__struct_config__.tag for t in EVENT_TYPES)
