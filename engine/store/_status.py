"""A workflow's status as a person or program sees it: the one rule, and what storage alone says.

The fold of the log gives PENDING, RUNNING, FAILED, CANCELED or SUCCESSFUL. What the log
cannot say is whether anybody is still driving it; two witnesses can:

* ``live``: what this cluster's manager says ("RUNNING" or "PENDING" if it holds the
  workflow, else None). Only known with Ray; storage-only readers (the CLI, the UI) pass None.
* ``lease``: the lease of the workflow's owner (:mod:`engine.store._leases`), from storage.

A RUNNING log whose owner's lease is in force (not expired, its cluster not known to be
gone) is RUNNING, whoever asks, with or without Ray. Otherwise RUNNING or PENDING in the log
with nobody holding it reads RESUMABLE (the driver, the manager or the cluster died). A final
status is final.

Also here, for the CLI and the UI: :func:`list_workflows` (a listing with times, through the
status index) and :func:`describe` (one workflow's fold, events, runs and lease).
"""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from replay import Event, Run, WorkflowState, WorkflowStatus, fold, read_events, runs_of, runtime_envs
from storage_backends import Storage

from . import _index
from ._leases import Lease, in_force, read_lease, read_leases

_FINAL = (WorkflowStatus.SUCCESSFUL, WorkflowStatus.CANCELED)
_OPEN = (WorkflowStatus.RUNNING, WorkflowStatus.PENDING)


def status_of(logged: WorkflowStatus | None, live: str | None = None, lease: Lease | None = None,
              now: float | None = None, asked_seat: Collection[str] | str | None = None) -> WorkflowStatus | None:
    """The status to report, from the logged status and the two witnesses (see the module doc).

    Args:
        asked_seat: the seat (``Lease.seat``) of the manager that answered ``live``, if one
            did, or the seats of every shard that was asked: a lease held from such a seat is
            no evidence, the manager sitting there said what it drives.
    """
    if logged in _FINAL:
        return logged
    if live is not None:
        return WorkflowStatus(live)
    if lease is not None and asked_seat is not None and (
            lease.seat == asked_seat if isinstance(asked_seat, str) else lease.seat in asked_seat):
        lease = None
    if logged is WorkflowStatus.RUNNING and in_force(lease, now) is not None:
        return WorkflowStatus.RUNNING
    if logged in _OPEN:
        return WorkflowStatus.RESUMABLE
    return logged


def storage_status(logged: WorkflowStatus | None, lease: Lease | None = None,
                   now: float | None = None) -> tuple[WorkflowStatus | None, Lease | None]:
    """:func:`status_of` from storage alone, with the lease that holds it (None if none does)."""
    status = status_of(logged, None, lease, now)
    return status, (lease if status is WorkflowStatus.RUNNING else None)


def needs_lease(state: WorkflowState) -> bool:
    """True if the status depends on the owner's lease (RUNNING in the log, with an owner)."""
    return state.status is WorkflowStatus.RUNNING and bool(state.owner)


async def lease_of(storage: Storage, state: WorkflowState) -> Lease | None:
    """The lease of the workflow's owner, if its status depends on one."""
    return await read_lease(storage, state.owner) if needs_lease(state) else None


async def statuses_from_storage(storage, states: dict[str, WorkflowState], live: dict[str, str] | None = None,
                                asked_seat: Collection[str] | str | None = None
                                ) -> dict[str, tuple[WorkflowStatus | None, Lease | None]]:
    """``{workflow_id: (status, lease or None)}`` for folded states; one lease read per owner.

    ``live`` and ``asked_seat`` as for :func:`status_of` (storage-only readers pass neither)."""
    live = live or {}
    owners = [s.owner for wid, s in states.items() if needs_lease(s) and wid not in live]
    leases = await read_leases(storage, owners)
    now = time.time()
    out = {}
    for workflow_id, state in states.items():
        lease = leases.get(state.owner) if needs_lease(state) else None
        status = status_of(state.status, live.get(workflow_id), lease, now, asked_seat)
        out[workflow_id] = (status, lease if status is WorkflowStatus.RUNNING and lease is not None else None)
    return out


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
                         now: float | None = None) -> list[WorkflowSummary]:
    """Every workflow in ``storage`` (or those with one of ``statuses``), in id order.

    Finished and failed workflows come from the status index (folded once, the first time, to
    add their times to it); the others are folded, and a RUNNING one's status is its owner's
    lease (one read per owner).
    """
    wanted = set(statuses) if statuses else None
    rows = await _index.listing(storage, sorted(await _index.list_workflow_ids(storage)),
                                skip=lambda status: wanted is not None and status not in wanted)
    leases = await read_leases(storage, (row.state.owner for row in rows.values()
                                         if row.state is not None and needs_lease(row.state)))
    out = []
    for workflow_id, row in rows.items():
        lease = leases.get(row.state.owner) if row.state is not None and needs_lease(row.state) else None
        status, lease = storage_status(row.status, lease, now)
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


async def describe(storage: Storage, workflow_id: str, now: float | None = None) -> Description | None:
    """Fold the workflow's log, with its runs, events and lease; None if it does not exist.

    Raises:
        replay.EventRecordError, storage_backends.LogCorruptedError: the log is damaged.
        replay.IllegalTransitionError: it holds an event that cannot follow the ones before.
    """
    events = [pair async for pair in read_events(storage, workflow_id)]
    state = fold(events)
    if state.status is None:
        return None
    status, lease = storage_status(state.status, await lease_of(storage, state), now)
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
        "runtime_env": runtime_envs.recorded(submission.runtime_env),  # names, never values
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
