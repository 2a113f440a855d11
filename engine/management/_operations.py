"""Managing many workflows: list_all, resume_all, cancel, delete, reindex.

Statuses come from folding each log (through the derived status index for
finished and failed ones, see :mod:`engine._index`); live ones (RUNNING,
PENDING) come from the manager, and the owners' leases from storage;
:func:`engine.store._status.status_of` is the single rule. Whatever appends an event that takes a log out of FAILED claims
it in the index first (here: ``cancel``; the runner for resume and cancel).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

import ray

from replay import WorkflowStatus

from ..api import _manager_client
from ..api._init import context
from ..api._workflows import _existing_state, _live_status, resume_async
from ..exceptions import WorkflowError, WorkflowStillActiveError
from ..store import _index
from ..store._offline import cancel_in_storage, delete_from_storage
from ..store._status import status_of, statuses_from_storage
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
    live = {wid: status for shard in _manager_client.ask_all(ctx, "live_statuses") for wid, status in shard.items()}

    async def logged() -> dict[str, WorkflowStatus | None]:
        found = await _index.lookup(ctx.storage, await _index.list_workflow_ids(ctx.storage))
        live.update((wid, "PENDING") for wid, status in found.statuses.items()  # sent by this process, not arrived
                    if status is WorkflowStatus.PENDING and wid not in live and wid in ctx.handed_over)
        open_states = {wid: st for wid, st in found.open_states.items() if wid not in live}
        judged = await statuses_from_storage(ctx.storage, open_states, asked_seat=ctx.seats)
        return {wid: judged[wid][0] if wid in judged else status_of(status, live.get(wid))
                for wid, status in found.statuses.items()}

    out = []
    for workflow_id, status in sorted(run_sync(logged()).items()):
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
    run_sync(cancel_in_storage(ctx.storage, workflow_id, state))  # not driven here: in the log


def delete(workflow_id: str) -> None:
    """Delete a workflow's log, payloads, mailbox and index entry. Refuses while it is running or queued."""
    ctx = context()
    state = _existing_state(workflow_id)
    status = _live_status(workflow_id, state)
    if status in (WorkflowStatus.RUNNING, WorkflowStatus.PENDING):
        raise WorkflowStillActiveError("delete", workflow_id, str(status))
    run_sync(delete_from_storage(ctx.storage, workflow_id, ctx.storage_url))


def reindex(progress: Callable[[int, int], None] | None = None) -> dict[str, int]:
    """Rebuild the status index from the logs alone; ``progress(done, total)`` is called as it goes."""
    return run_sync(_index.rebuild(context().storage, progress))
