"""Events, the pure fold, and the replay tool. Never imports ray.

The event schema (:mod:`replay._events`) and the fold (:func:`fold`) are the
only code that knows what a workflow's log means.
"""

from ._codec import FORMAT_VERSION, EventDecodeError, UnknownEventError, decode_event, decode_raw, encode_event
from ._events import (
    EVENT_TAGS,
    EVENT_TYPES,
    AnyEvent,
    CancelRequested,
    Event,
    EventAwaited,
    EventReceived,
    EventSent,
    ForkOrigin,
    PayloadRef,
    TaskCaught,
    TaskCompleted,
    TaskContinued,
    TaskFailed,
    TaskForked,
    TaskRetried,
    TaskScheduled,
    TaskStarted,
    TimerSet,
    WorkflowCanceled,
    WorkflowFailed,
    WorkflowRunStarted,
    WorkflowSnapshotted,
    WorkflowSubmitted,
    WorkflowSucceeded,
)
from ._fold import IllegalTransitionError, apply, fold
from . import _runtime_env as runtime_envs  # runtime envs as logs record them: no secret values
from ._log import EventRecordError, append_events, load_state, read_blob, read_events
from ._mailbox import Mailbox, mailbox_log_id, read_mailbox
from ._runs import RUN_OUTCOMES, Run, runs_of
from ._snapshot import DEFAULT_SNAPSHOT_EVERY, SNAPSHOT_BLOB, SnapshotError, snapshot_due, take_snapshot
from ._state import TaskError, TaskState, TaskStatus, WaitState, WorkflowState, WorkflowStatus
from ._waits import describe_wait

__all__ = [name for name in dir() if not name.startswith("_")]
