"""Reading a workflow's events from storage and folding them.

The only glue between the byte-level storage and the event-level fold; the
engine, ``list_all`` and the CLI all come through here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from storage_backends import Batch, BlobNotFoundError, Storage

from ._codec import EventDecodeError, decode_concatenated, decode_event, encode_event
from ._events import Event, PayloadRef
from ._fold import apply, apply_run
from ._gc import gc_paused
from ._snapshot import SNAPSHOT_BLOB, SnapshotError, announces, decode_snapshot
from ._state import WorkflowState


class EventRecordError(EventDecodeError):
    """A record that does not decode, with the workflow and seq it sits at."""

    def __init__(self, workflow_id: str, seq: int, offset: int, cause: EventDecodeError):
        self.workflow_id = workflow_id
        self.seq = seq
        self.offset = offset
        self.cause = cause
        super().__init__(f"workflow {workflow_id!r}, seq {seq} (byte offset {offset}): {cause}")


async def read_events(storage: Storage, workflow_id: str, from_seq: int = 0
                      ) -> AsyncIterator[tuple[int, Event]]:
    """Yield ``(seq, event)`` for each event of the workflow's log from ``from_seq``."""
    async for record in storage.read(workflow_id, from_seq):
        try:
            event = decode_event(record.data)
        except EventDecodeError as exc:
            raise EventRecordError(workflow_id, record.seq, record.offset, exc) from exc
        yield record.seq, event


async def load_state(storage: Storage, workflow_id: str, use_snapshot: bool = True) -> WorkflowState:
    """Fold the workflow's log. An unknown workflow gives a state with status None.

    With ``use_snapshot`` (the default), a snapshot of a long log (:mod:`replay._snapshot`) is
    read first and only the events after it are folded; the result is the same as folding the
    whole log, which is what happens when there is no usable snapshot.

    Stored batch by batch: each batch's records are decoded in one call and
    folded with the cyclic GC paused (never across an ``await``). The outcome,
    errors included, is that of applying the records one by one in seq order:
    on damage in storage, every record before it is applied first, so an
    illegal transition before the damage is what gets raised.
    """
    if use_snapshot:
        state = await _load_from_snapshot(storage, workflow_id)
        if state is not None:
            return state
    state = WorkflowState()
    async for batch in storage.read_batches(workflow_id):
        _apply_batch(state, workflow_id, batch)
    return state


async def _load_from_snapshot(storage: Storage, workflow_id: str) -> WorkflowState | None:
    """The fold from the workflow's snapshot and the events after it; None if it has no usable one."""
    try:
        header, state = decode_snapshot(await storage.get_blob(workflow_id, SNAPSHOT_BLOB))
    except (BlobNotFoundError, SnapshotError):
        return None
    first = True
    async for batch in storage.read_batches(workflow_id, header.event_seq):
        if first:  # the record at event_seq must announce this very snapshot
            first = False
            record = batch.records()[0]
            try:
                event = decode_event(record.data)
            except EventDecodeError:
                return None
            if record.seq != header.event_seq or not announces(event, header):
                return None
        _apply_batch(state, workflow_id, batch)
    return None if first else state


def _apply_batch(state: WorkflowState, workflow_id: str, batch: Batch) -> None:
    with gc_paused():
        count = len(batch.lengths)
        events = decode_concatenated(batch.data, count) if count > 1 else None
        if events is not None:
            apply_run(state, batch.first_seq, events)
            return
        for record in batch.records():  # one record, or a batch the bulk decode refused
            try:
                event = decode_event(record.data)
            except EventDecodeError as exc:
                raise EventRecordError(workflow_id, record.seq, record.offset, exc) from exc
            apply(state, event, record.seq)


async def append_events(storage: Storage, workflow_id: str, events: list[Event],
                        expected_next_seq: int) -> int:
    """Encode and compare-and-append ``events``; returns the log's new next seq."""
    return await storage.append(workflow_id, [encode_event(e) for e in events], expected_next_seq)


async def read_blob(storage: Storage, workflow_id: str, ref: PayloadRef) -> bytes:
    """The bytes of ``ref``'s blob, a payload of ``workflow_id``'s log.

    A fork's shared output names the workflow that holds it (``ref.log``); once that workflow
    is deleted, its delete has copied the blob into the fork's own blobs (engine/store/_forks.py).

    Raises:
        BlobNotFoundError: in neither place.
    """
    if ref.log is not None and ref.log != workflow_id:
        try:
            return await storage.get_blob(ref.log, ref.blob)
        except BlobNotFoundError:
            pass
    return await storage.get_blob(workflow_id, ref.blob)
