"""Changes to a workflow that no live driver holds, made in storage alone: cancel and delete.

:mod:`engine.management` calls these once the manager has said it does not drive the
workflow; the CLI calls them directly for a workflow whose log says it is not running (so
no Ray is needed to cancel a FAILED workflow or delete a finished one).
"""

from __future__ import annotations

import time

from replay import WorkflowCanceled, WorkflowState, WorkflowStatus, append_events, load_state, mailbox_log_id
from storage_backends import AppendConflictError, Storage

from ..exceptions import WorkflowError, WorkflowNotFoundError
from . import _forks, _index


async def cancel_in_storage(storage: Storage, workflow_id: str, state: WorkflowState) -> WorkflowStatus:
    """Append ``workflow.canceled`` to a workflow nobody drives; returns its status after.

    ``state`` is its fold as the caller read it; a race with another writer re-reads the log
    (a workflow that ended meanwhile is left as it ended). A FAILED log is claimed in the
    status index first: the index trusts FAILED, so it must never outlive the log's FAILED.

    Raises:
        WorkflowError: the log kept changing under five attempts.
    """
    for _ in range(5):
        if state.status in (WorkflowStatus.SUCCESSFUL, WorkflowStatus.CANCELED):
            return state.status
        seq = state.next_seq
        if state.status is WorkflowStatus.FAILED:
            await _index.claim(storage, workflow_id, seq)
        try:
            await append_events(storage, workflow_id, [WorkflowCanceled(ts=time.time())], seq)
        except AppendConflictError:
            state = await load_state(storage, workflow_id)
            continue
        await _index.record(storage, workflow_id, WorkflowStatus.CANCELED, seq)
        return WorkflowStatus.CANCELED
    raise WorkflowError(f"could not cancel workflow {workflow_id!r}: its log kept changing")


async def delete_from_storage(storage: Storage, workflow_id: str, storage_url: str = "") -> None:
    """Delete a workflow's log, payloads, mailbox and index entry (the caller checked nobody drives it).

    Outputs that live forks share are copied into them first, and a fork stops counting as a
    sharer of its source's outputs (:mod:`engine.store._forks`).

    Raises:
        WorkflowNotFoundError: there was no such log.
    """
    try:
        shared_from = _owners(await load_state(storage, workflow_id), workflow_id)
    except Exception:  # a damaged log is still deleted; it cannot say whose outputs it shared
        shared_from = []
    await _forks.hand_over(storage, workflow_id)
    # Tombstone first: if we crash before the log is gone, the log is folded, never misread.
    await _index.append(storage, deleted=[workflow_id])
    if not await storage.delete(workflow_id):
        raise WorkflowNotFoundError(workflow_id, storage_url)
    await storage.delete(mailbox_log_id(workflow_id))
    await _forks.forget(storage, workflow_id)
    for owner in shared_from:
        await _forks.unregister(storage, owner, workflow_id)


def _owners(state: WorkflowState, workflow_id: str) -> list[str]:
    """The workflows whose outputs ``workflow_id`` (a fork) shares."""
    return sorted({t.output.log for t in state.tasks.values()
                   if t.output is not None and t.output.log not in (None, workflow_id)})
