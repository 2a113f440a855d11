"""A workflow's status from storage alone: the one rule the CLI and the UI use (no Ray).

The log says what was recorded; whether anyone still drives a workflow whose log says
RUNNING or PENDING is a *lease*: its owner (a cluster's manager) holds it in storage while
it drives the workflow and lets it expire when it dies. A RUNNING or PENDING log with a live
lease is what it says; without one it is RESUMABLE, which is exactly what the API's
``combine_status`` answers when no live manager holds the workflow.

Also here: :func:`list_workflows` (a listing with times, through the status index) and
:func:`describe` (one workflow's fold, events and runs).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from replay import Event, Run, WorkflowState, WorkflowStatus, fold, read_events, runs_of
from storage_backends import Storage

from . import _index

_DRIVEN = (WorkflowStatus.RUNNING, WorkflowStatus.PENDING)


@dataclass(frozen=True)
class Lease:
    """Who drives a workflow, as storage records it.

    Attributes:
        owner: the holder's id (a cluster's manager).
        label: a name a person recognizes (say the head node's address); may be empty.
        expires_at: Unix seconds; the lease is live until then.
    """

    owner: str
    label: str = ""
    expires_at: float = 0.0

    def live(self, now: float) -> bool:
        return self.expires_at > now

    def to_dict(self) -> dict[str, Any]:
        return {"owner": self.owner, "label": self.label, "expires_at": self.expires_at}


def storage_status(logged: WorkflowStatus | None, lease: Lease | None = None,
                   now: float | None = None) -> tuple[WorkflowStatus | None, Lease | None]:
    """The status to show for a workflow whose log folds to ``logged``, and its live lease.

    Returns:
        ``(status, lease)``: RUNNING or PENDING (as logged) with the lease while it is live;
        ``(RESUMABLE, None)`` for a RUNNING or PENDING log without one; anything else as logged.
    """
    if logged not in _DRIVEN:
        return logged, None
    now = time.time() if now is None else now
    if lease is not None and lease.live(now):
        return logged, lease
    return WorkflowStatus.RESUMABLE, None


@dataclass
class WorkflowSummary:
    """One row of a listing: ``list`` and the UI's index page."""

    workflow_id: str
    status: WorkflowStatus
    start_time: float | None
    end_time: float | None
    failed_task: str | None
    lease: Lease | None = None

    @property
    def duration(self) -> float | None:
        if self.start_time is None or self.end_time is None:
            return None
        return max(0.0, self.end_time - self.start_time)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: times in Unix seconds, the duration in seconds."""
        return {"workflow_id": self.workflow_id, "status": str(self.status), "start_time": self.start_time,
                "end_time": self.end_time, "duration_s": self.duration, "failed_task": self.failed_task,
                "lease": None if self.lease is None else self.lease.to_dict()}


async def list_workflows(storage: Storage, statuses: Collection[WorkflowStatus] | None = None,
                         leases: Callable[[str], Lease | None] = lambda workflow_id: None,
                         now: float | None = None) -> list[WorkflowSummary]:
    """Every workflow in ``storage`` (or those with one of ``statuses``), in id order.

    Finished and failed workflows come from the status index (folded once, the first time, to
    add their times to it); the others are folded. ``leases(workflow_id)`` gives a workflow's
    lease, if it has one.
    """
    wanted = set(statuses) if statuses else None
    rows = await _index.listing(storage, sorted(await storage.list_logs()),
                                skip=lambda status: wanted is not None and status not in wanted)
    out = []
    for workflow_id, row in rows.items():
        status, lease = storage_status(row.status, leases(workflow_id), now)
        if status is None or (wanted is not None and status not in wanted):
            continue
        times = row.times
        out.append(WorkflowSummary(workflow_id, status, times.start, times.end, times.failed_task, lease))
    return out


@dataclass
class Description:
    """One workflow as storage describes it: ``status`` and the UI's workflow page."""

    state: WorkflowState
    status: WorkflowStatus
    lease: Lease | None
    runs: list[Run]
    events: list[tuple[int, Event]] = field(repr=False, default_factory=list)


async def describe(storage: Storage, workflow_id: str, lease: Lease | None = None,
                   now: float | None = None) -> Description | None:
    """Fold the workflow's log, with its runs and events; None if it does not exist.

    Raises:
        replay.EventRecordError, storage_backends.LogCorruptedError: the log is damaged.
        replay.IllegalTransitionError: it holds an event that cannot follow the ones before.
    """
    events = [pair async for pair in read_events(storage, workflow_id)]
    state = fold(events)
    if state.status is None:
        return None
    status, lease = storage_status(state.status, lease, now)
    return Description(state, status, lease, runs_of(e for _seq, e in events), events)


_ENDED = (WorkflowStatus.SUCCESSFUL, WorkflowStatus.FAILED, WorkflowStatus.CANCELED)


def metadata(state: WorkflowState, status: WorkflowStatus) -> dict[str, Any]:
    """``workflow.get_metadata(workflow_id)``'s shape (ray.workflow 2.47 plus our keys) from a fold:
    ``stats`` has the latest run's start once it ran, and the end once it ended."""
    submission = state.submission
    return {
        "status": str(status),
        "user_metadata": dict(state.user_metadata),
        "stats": stats(state.run_start_time, state.end_time if state.status in _ENDED else None),
        "runtime_env": submission.runtime_env,
        "packages": dict(submission.packages),
        "ray_version": submission.ray_version,
        "engine_version": submission.engine_version,
    }


def stats(start: float | None, end: float | None) -> dict[str, float]:
    """2.47's ``stats``: ``start_time`` and ``end_time`` only where known (Unix seconds)."""
    out = {}
    if start is not None:
        out["start_time"] = start
    if end is not None:
        out["end_time"] = end
    return out
