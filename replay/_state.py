"""Status enums and the state the fold produces.

Mutable msgspec Structs: the fold mutates them while it applies events, and
callers treat them as read-only snapshots. (Structs rather than dataclasses
because a replay creates one TaskState per task: a Struct is ~4x cheaper to
construct, and with ``gc=False`` the collector never tracks them. Nothing in a
state refers back to the state, so no cycle can go uncollected. A task's
errors and spans are tuples, not lists, for the same reason: the collector
untracks a tuple of plain values, while every list would stay tracked and
make the collector's full passes over a big replay slower.)
"""

from __future__ import annotations

import enum
from typing import Any

import msgspec

from ._events import PayloadRef, WorkflowSubmitted


class WorkflowStatus(str, enum.Enum):
    """ray.workflow's statuses. The fold yields all but RESUMABLE, which means
    "RUNNING in the log, but no live driver", and only the engine can know that."""

    RUNNING = "RUNNING"
    FAILED = "FAILED"
    RESUMABLE = "RESUMABLE"
    CANCELED = "CANCELED"
    SUCCESSFUL = "SUCCESSFUL"
    PENDING = "PENDING"

    def __str__(self) -> str:
        return self.value


class TaskStatus(str, enum.Enum):
    SCHEDULED = "SCHEDULED"
    RUNNING = "RUNNING"
    SUCCESSFUL = "SUCCESSFUL"
    FAILED = "FAILED"
    CONTINUED = "CONTINUED"  # returned a sub-DAG; done when that sub-DAG's output is

    def __str__(self) -> str:
        return self.value


class TaskError(msgspec.Struct, gc=False):
    """One failed attempt of a task."""

    attempt: int
    error_type: str
    message: str
    traceback: str = ""
    at: float = 0.0
    payload: PayloadRef | None = None


class WaitState(msgspec.Struct, gc=False):
    """What a waiting task (a timer or an event wait) waits for, and what it got."""

    kind: str  # "timer" | "event"
    since: float  # when its first attempt began waiting
    deadline: float | None = None  # timer: when it fires (absolute Unix seconds)
    event_key: str | None = None  # mailbox wait: the key it takes
    listener: str = ""  # event wait: the listener type
    received: PayloadRef | None = None  # event wait: the event, once received (durable)
    received_at: float | None = None
    mailbox_seq: int | None = None


class TaskState(msgspec.Struct, gc=False):
    """Everything the log says about one task."""

    task_id: str
    name: str
    status: TaskStatus = TaskStatus.SCHEDULED
    attempt: int = 1
    task_options: dict[str, Any] = {}
    user_metadata: dict[str, Any] = {}
    parent_task_id: str | None = None
    deps: tuple[str, ...] = ()
    scheduled_at: float = 0.0
    started_at: float | None = None
    ended_at: float | None = None
    output: PayloadRef | None = None
    errors: tuple[TaskError, ...] = ()  # every failed attempt, oldest first
    continuation: PayloadRef | None = None  # the sub-DAG it returned, if any
    continuation_output_task_id: str | None = None
    continuation_task_ids: dict[str, str] = {}  # the sub-DAG's stored ids -> the ids it runs under
    caught_from: str | None = None  # it caught this task's failure (catch_exceptions)
    spans: tuple[tuple[int, float, float | None], ...] = ()  # (attempt, start, end) per start
    wait: WaitState | None = None  # set for timers and event waits
    forked: bool = False  # its completion was taken over from the workflow this one forks (task.forked)

    @property
    def error(self) -> TaskError | None:
        """The latest failure, or None."""
        return self.errors[-1] if self.errors else None

    @property
    def duration(self) -> float | None:
        if self.started_at is None or self.ended_at is None:
            return None
        return self.ended_at - self.started_at


class WorkflowState(msgspec.Struct, gc=False):
    """A workflow as its log describes it up to ``last_seq``."""

    workflow_id: str = ""
    status: WorkflowStatus | None = None  # None until the submission event
    submission: WorkflowSubmitted | None = None
    tasks: dict[str, TaskState] = {}
    output: PayloadRef | None = None
    failed_task_id: str | None = None
    error_type: str | None = None
    error_message: str | None = None
    cancel_requested: bool = False
    start_time: float | None = None  # when it was submitted
    end_time: float | None = None
    run_start_time: float | None = None  # when its latest run claimed it (None before any run)
    run_ids: list[str] = []
    owner: str = ""  # the lease holder of the latest run ("" before any run, or before leases)
    owner_cluster: str = ""  # its cluster's label
    owner_application: str = ""
    last_seq: int = -1
    last_ts: float | None = None  # the ts of the event at last_seq ("now", as far as the log knows)
    # continuation bookkeeping: sub-DAG output task id -> the task waiting on it
    waiting_on: dict[str, str] = {}
    event_keys: dict[str, str] = {}  # mailbox event key received -> the task that received it
    last_snapshot_seq: int = -1  # seq of the latest workflow.snapshot event (-1: none)

    @property
    def next_seq(self) -> int:
        return self.last_seq + 1

    @property
    def user_metadata(self) -> dict[str, Any]:
        return self.submission.user_metadata if self.submission else {}

    @property
    def is_terminal(self) -> bool:
        """SUCCESSFUL or CANCELED: nothing may follow."""
        return self.status in (WorkflowStatus.SUCCESSFUL, WorkflowStatus.CANCELED)

    def continuation_chain(self, task_id: str) -> list[str]:
        """``task_id`` and the tasks it continued into, in order: the last one's output is its output.

        A task that returned a sub-DAG hands its output over to that sub-DAG's
        output task, which may itself continue; ``["rank", "take_top"]`` means
        rank's value is take_top's.
        """
        chain = [task_id]
        task = self.tasks.get(task_id)
        while task is not None and task.continuation_output_task_id is not None:
            nxt = task.continuation_output_task_id
            if nxt in chain:  # a cycle the fold would never finish; do not loop forever
                break
            chain.append(nxt)
            task = self.tasks.get(nxt)
        return chain

    def completed_outputs(self) -> dict[str, PayloadRef]:
        """Task id -> output ref of every task whose completion is durable (resume points)."""
        return {t.task_id: t.output for t in self.tasks.values()
                if t.status is TaskStatus.SUCCESSFUL and t.output is not None}
