"""Changes to a workflow that no live driver holds, made in storage alone: cancel, delete, and
dropping a finished workflow's intermediate outputs.

:mod:`engine.management` calls these once the manager has said it does not drive the
workflow; the CLI calls them directly for a workflow whose log says it is not running (so
no Ray is needed to cancel a FAILED workflow or delete a finished one). gc and retention
(:mod:`engine.store._retention`) and ``run(..., keep="output")`` come through here too: every
removal of a workflow's data is :func:`delete_from_storage` / :func:`finish_delete` or
:func:`drop_outputs`, so one place decides what may go.
"""

from __future__ import annotations

import asyncio
import time

import msgspec

from replay import (
    SNAPSHOT_BLOB,
    TaskStatus,
    WorkflowCanceled,
    WorkflowState,
    WorkflowStatus,
    append_events,
    load_state,
    mailbox_log_id,
)
from storage_backends import AppendConflictError, Storage, StorageError

from ..exceptions import WorkflowError, WorkflowNotFoundError
from . import _forks, _index

OUTPUTS_DROPPED = "outputs-dropped"  # the marker blob of a workflow whose intermediate outputs were dropped
_OPEN = (WorkflowStatus.RUNNING, WorkflowStatus.PENDING)


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


async def delete_from_storage(storage: Storage, workflow_id: str, storage_url: str = "",
                              open_ok: bool = True) -> bool:
    """Delete a workflow's log, payloads, mailbox and index entry (the caller checked nobody drives it).

    In an order a crash cannot make half visible: (1) one index record, the tombstone (its entry
    goes) with a deletion mark; (2) :func:`finish_delete`. Cut short anywhere, the workflow is
    left out of every listing, and the next gc (or retention pass) finishes the delete.

    Args:
        open_ok: delete a log that says RUNNING or PENDING (``delete`` of a RESUMABLE workflow:
            the caller judged it with the manager and the lease). gc passes False.

    Returns:
        True if it was deleted; False if it was kept because it started again meanwhile.

    Outputs that live forks share are copied into them before any blob goes, and a fork stops
    counting as a sharer of its source's outputs (:mod:`engine.store._forks`).

    Raises:
        WorkflowNotFoundError: there was no such log.
    """
    state = await load_state(storage, workflow_id)
    if state.status is None:
        raise WorkflowNotFoundError(workflow_id, storage_url)
    if not open_ok and state.status in _OPEN:
        return False
    await _index.append(storage, deleted=[workflow_id], deleting={workflow_id: state.start_time})
    return await finish_delete(storage, workflow_id, state.start_time, open_ok)


async def finish_delete(storage: Storage, workflow_id: str, started: float, open_ok: bool = False) -> bool:
    """Finish a delete begun with a deletion mark on the log submitted at ``started``.

    A FAILED log is first made CANCELED with a compare-and-append (claimed in the index first, as
    every writer that leaves FAILED does), so a ``resume`` racing the delete either lands first
    (then the workflow is kept) or finds the log final; then the mailbox, the log with its blobs
    (on S3 the batches, then the blobs), and last the mark. A log that reads as damaged under a
    mark is what an S3 delete cut short leaves: it is removed.

    Returns:
        True if the log is gone; False if the workflow was kept (it runs again, or the id now
        names a newer workflow), and the mark is cleared.
    """
    for _ in range(5):
        try:
            state = await load_state(storage, workflow_id)
        except (StorageError, ValueError):  # LogCorruptedError, EventRecordError: a delete cut short
            break
        if state.status is not None and (state.start_time != started or (state.status in _OPEN and not open_ok)):
            await _index.append(storage, deleting={workflow_id: -1.0})
            return False
        if state.status is not WorkflowStatus.FAILED:
            break
        try:
            await _index.claim(storage, workflow_id, state.next_seq)
            await append_events(storage, workflow_id, [WorkflowCanceled(ts=time.time())], state.next_seq)
            break
        except AppendConflictError:
            continue
    else:
        raise WorkflowError(f"could not delete workflow {workflow_id!r}: its log kept changing")
    try:
        shared_from = _owners(await load_state(storage, workflow_id), workflow_id)
    except Exception:  # a damaged log is still deleted; it cannot say whose outputs it shared
        shared_from = []
    await _forks.hand_over(storage, workflow_id)  # before any blob goes (safe to run again)
    await storage.delete(mailbox_log_id(workflow_id))
    await storage.delete(workflow_id)  # the log first, then its blobs (see Storage.delete)
    await _forks.forget(storage, workflow_id)
    for owner in shared_from:
        await _forks.unregister(storage, owner, workflow_id)
    # The tombstone again, for whatever was indexed meanwhile (the fence's claim, a listing's repair).
    await _index.append(storage, deleted=[workflow_id], deleting={workflow_id: -1.0})
    return True


def _owners(state: WorkflowState, workflow_id: str) -> list[str]:
    """The workflows whose outputs ``workflow_id`` (a fork) shares."""
    return sorted({t.output.log for t in state.tasks.values()
                   if t.output is not None and t.output.log not in (None, workflow_id)})


_marker_encoder = msgspec.msgpack.Encoder()


async def drop_outputs(storage: Storage, workflow_id: str, state: WorkflowState,
                       dry_run: bool = False) -> dict[str, int]:
    """``keep="output"``: drop a SUCCESSFUL workflow's blobs but its result, and its mailbox.

    Intermediate outputs, sub-DAGs, the DAG, arguments and events received go; the result
    (``get_output(workflow_id)``), the log (status, metadata, history) and its compaction
    snapshot stay. Payloads small enough to be inline in the log's events stay with the log.
    The marker blob :data:`OUTPUTS_DROPPED` is written first, so a ``get_output`` of a task
    whose blob is gone says why, whether or not the drop was cut short; running it again
    finishes it.

    Returns:
        blob name -> bytes, of what was (or, with ``dry_run``, would be) dropped; {} if nothing.
    """
    if state.status is not WorkflowStatus.SUCCESSFUL:
        raise WorkflowError(f"workflow {workflow_id!r} is {state.status}: only a SUCCESSFUL workflow's "
                            "intermediate outputs can be dropped (the others have no result to keep)")
    keep = {OUTPUTS_DROPPED, SNAPSHOT_BLOB}
    if state.output is not None and state.output.blob:
        keep.add(state.output.blob)
    blobs = await storage.list_blobs(workflow_id)
    if blobs is None:  # a backend that cannot list: the blobs the log names
        blobs = _named_blobs(state)
    drop = {name: size for name, size in blobs.items() if name not in keep}
    mailbox = mailbox_log_id(workflow_id)
    if dry_run or (not drop and not await storage.exists(mailbox)):
        return drop
    await _forks.hand_over(storage, workflow_id, reason="drop")  # live forks keep what they share
    if not await storage.blob_exists(workflow_id, OUTPUTS_DROPPED):
        marker = {"at": time.time(), "kept": state.output.blob if state.output is not None else None}
        await storage.put_blob(workflow_id, OUTPUTS_DROPPED, _marker_encoder.encode(marker))
    limit = asyncio.Semaphore(16)

    async def one(name: str) -> None:
        async with limit:
            await storage.delete_blob(workflow_id, name)

    await asyncio.gather(*(one(name) for name in drop))
    await storage.delete(mailbox)
    return drop


async def outputs_dropped(storage: Storage, workflow_id: str) -> bool:
    """Whether :func:`drop_outputs` ran on the workflow (its intermediate outputs are gone)."""
    return await storage.blob_exists(workflow_id, OUTPUTS_DROPPED)


def _named_blobs(state: WorkflowState) -> dict[str, int]:
    """Every blob the log names: task outputs, sub-DAGs, errors, events received, the DAG, the inputs."""
    refs = []
    if state.submission is not None:
        refs += [state.submission.dag, state.submission.inputs]
    for task in state.tasks.values():
        if task.status is TaskStatus.SUCCESSFUL or task.output is not None:
            refs.append(task.output)
        refs.append(task.continuation)
        refs += [error.payload for error in task.errors]
        if task.wait is not None:
            refs.append(task.wait.received)
    return {ref.blob: ref.size for ref in refs if ref is not None and ref.blob}
