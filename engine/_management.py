"""Managing many workflows: list_all, resume_all, cancel, delete.

Statuses come from folding each log; RESUMABLE is RUNNING (or PENDING) in the
log with no live driver, decided here and in get_status from one helper.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

import ray

from replay import WorkflowCanceled, WorkflowStatus, append_events, load_state
from storage_backends import AppendConflictError

from ._api import _existing_state, _live_status, resume_async
from ._context import context
from ._errors import WorkflowError, WorkflowNotFoundError
from ._sync import run_sync

logger = logging.getLogger(__name__)


def _as_status_set(status_filter: Any) -> set[WorkflowStatus] | None:
    if status_filter is None:
        return None
    if isinstance(status_filter, (str, WorkflowStatus)):
        status_filter = [status_filter]
    if not isinstance(status_filter, Iterable):
        raise TypeError(f"status_filter must be a status or a set of statuses, got {status_filter!r}")
    statuses = set()
    for item in status_filter:
        try:
            statuses.add(WorkflowStatus(str(item)))
        except ValueError:
            raise ValueError(f"unknown workflow status {item!r}; use one of "
                             f"{', '.join(s.value for s in WorkflowStatus)}") from None
    return statuses


def list_all(status_filter: Any = None) -> list[tuple[str, WorkflowStatus]]:
    """``[(workflow_id, status)]`` for every workflow, optionally only those with the given status(es)."""
    wanted = _as_status_set(status_filter)
    ctx = context()
    storage = ctx.storage
    running = set(ray.get(ctx.manager.running.remote()))

    async def statuses() -> list[tuple[str, WorkflowStatus]]:
        out = []
        for workflow_id in await storage.list_logs():
            state = await load_state(storage, workflow_id)
            status = state.status
            if status in (WorkflowStatus.RUNNING, WorkflowStatus.PENDING) and workflow_id not in running:
                status = WorkflowStatus.RESUMABLE
            out.append((workflow_id, status))
        return out

    return [(w, s) for w, s in run_sync(statuses()) if wanted is None or s in wanted]


def resume_all(include_failed: bool = False) -> list[tuple[str, ray.ObjectRef]]:
    """Resume every RESUMABLE (and, if asked, FAILED) workflow; ``[(workflow_id, ObjectRef)]``."""
    wanted = {WorkflowStatus.RESUMABLE} | ({WorkflowStatus.FAILED} if include_failed else set())
    resumed = []
    for workflow_id, _status in list_all(wanted):
        try:
            resumed.append((workflow_id, resume_async(workflow_id)))
        except WorkflowError as exc:  # e.g. another driver claimed it meanwhile
            logger.warning("not resuming %s: %s", workflow_id, exc)
    return resumed


def cancel(workflow_id: str) -> None:
    """Cancel a workflow: stop its tasks and record it CANCELED (a finished one is left as it is)."""
    ctx = context()
    state = _existing_state(workflow_id)
    if state.status in (WorkflowStatus.SUCCESSFUL, WorkflowStatus.CANCELED):
        logger.info("workflow %s is already %s; nothing to cancel", workflow_id, state.status)
        return
    if ray.get(ctx.manager.cancel.remote(workflow_id)):
        return
    for _ in range(5):  # not driven here: append the canceled event ourselves
        try:
            run_sync(append_events(ctx.storage, workflow_id, [WorkflowCanceled(ts=time.time())],
                                   state.next_seq))
            return
        except AppendConflictError:
            state = _existing_state(workflow_id)
            if state.status in (WorkflowStatus.SUCCESSFUL, WorkflowStatus.CANCELED):
                return
    raise WorkflowError(f"could not cancel workflow {workflow_id!r}: its log kept changing")


def delete(workflow_id: str) -> None:
    """Delete a workflow's log and payloads. Refuses while it is running."""
    ctx = context()
    state = _existing_state(workflow_id)
    if _live_status(workflow_id, state) is WorkflowStatus.RUNNING:
        raise WorkflowError(f"workflow {workflow_id!r} is running; cancel it before deleting it")
    if not run_sync(ctx.storage.delete(workflow_id)):
        raise WorkflowNotFoundError(workflow_id, ctx.storage_url)
