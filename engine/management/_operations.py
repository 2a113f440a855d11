"""Managing many workflows: list_all, resume_all, cancel, delete, reindex.

Statuses come from folding each log (through the derived status index for
finished and failed ones, see :mod:`engine._index`); live ones (RUNNING,
PENDING) come from the manager; :func:`engine._api.combine_status` is the
single rule. Whatever appends an event that takes a log out of FAILED claims
it in the index first (here: ``cancel``; the runner for resume and cancel).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

import ray

from replay import WorkflowCanceled, WorkflowStatus, append_events
from storage_backends import AppendConflictError

from ..api import _manager_client
from ..api._init import context
from ..api._workflows import _existing_state, _live_status, combine_status, resume_async
from ..exceptions import WorkflowError, WorkflowNotFoundError, WorkflowStillActiveError
from ..store import _index
from ..store._sync import run_sync

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
    live = _manager_client.ask(ctx, "live_statuses")

    async def logged() -> dict[str, WorkflowStatus | None]:
        return await _index.statuses(ctx.storage, await ctx.storage.list_logs())

    out = []
    for workflow_id, status in sorted(run_sync(logged()).items()):
        status = combine_status(status, live.get(workflow_id))
        if status is not None and (wanted is None or status in wanted):
            out.append((workflow_id, status))
    return out


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
        logger.warning("workflow %s is already %s; cancel does nothing", workflow_id, state.status)
        return
    if _manager_client.ask(ctx, "cancel", workflow_id):
        return
    for _ in range(5):  # not driven here: append the canceled event ourselves
        seq = state.next_seq
        if state.status is WorkflowStatus.FAILED:
            # Claim first: the index trusts FAILED, so it must never outlive the log's FAILED.
            run_sync(_index.claim(ctx.storage, workflow_id, seq))
        try:
            run_sync(append_events(ctx.storage, workflow_id, [WorkflowCanceled(ts=time.time())], seq))
            run_sync(_index.record(ctx.storage, workflow_id, WorkflowStatus.CANCELED, seq))
            return
        except AppendConflictError:
            state = _existing_state(workflow_id)
            if state.status in (WorkflowStatus.SUCCESSFUL, WorkflowStatus.CANCELED):
                return
    raise WorkflowError(f"could not cancel workflow {workflow_id!r}: its log kept changing")


def delete(workflow_id: str) -> None:
    """Delete a workflow's log, payloads and index entry. Refuses while it is running or queued."""
    ctx = context()
    state = _existing_state(workflow_id)
    status = _live_status(workflow_id, state)
    if status in (WorkflowStatus.RUNNING, WorkflowStatus.PENDING):
        raise WorkflowStillActiveError("delete", workflow_id, str(status))
    # Tombstone first: if we crash before the log is gone, the log is folded, never misread.
    run_sync(_index.append(ctx.storage, deleted=[workflow_id]))
    if not run_sync(ctx.storage.delete(workflow_id)):
        raise WorkflowNotFoundError(workflow_id, ctx.storage_url)


def reindex(progress: Callable[[int, int], None] | None = None) -> dict[str, int]:
    """Rebuild the status index from the logs alone; ``progress(done, total)`` is called as it goes."""
    return run_sync(_index.rebuild(context().storage, progress))
