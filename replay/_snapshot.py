"""Compaction: a snapshot of the fold, so that loading a long log reads the snapshot and its tail.

A snapshot is the :class:`WorkflowState` as of seq ``S``, msgpack-encoded, kept as the blob
:data:`SNAPSHOT_BLOB` beside the log, and announced in the log by a ``workflow.snapshot``
event at seq ``S + 1`` naming the state's digest. The log's writer (the engine's run) does,
in this order:

1. appends the ``workflow.snapshot`` event right after the last event it covers (the fold
   refuses it anywhere else);
2. once that append is durable, replaces the blob (one atomic write on every backend).

A reader (:func:`replay.load_state`) reads the blob (one file or one GET), then the log from
``S + 1`` only, and uses the snapshot only if the record at ``S + 1`` is the event naming that
very digest; anything else (no blob, a blob from a log deleted and begun again under the same
id, a damaged blob, a crash between 1 and 2) falls back to folding the whole log. So a snapshot
can make a load faster but never different: ``fold(all) == fold(tail, decode(snapshot))``,
which the property tests check over generated logs.

The events a snapshot covers stay in the log: ``replay events`` and the timeline still show
them, until the workflow is deleted. Pure: no I/O here (``replay._log`` does the reading).
"""

from __future__ import annotations

import struct
import time
import zlib

import msgspec

from ._events import WorkflowSnapshotted
from ._gc import gc_paused
from ._state import WorkflowState, WorkflowStatus

SNAPSHOT_BLOB = "snapshot"
DEFAULT_SNAPSHOT_EVERY = 10_000  # events since the last snapshot before the writer takes one
_MAGIC = b"RDS1"
_HEAD = struct.Struct("<4sI")  # magic, header length


class SnapshotError(ValueError):
    """Snapshot bytes that cannot be used (damaged, or of another format); the reader folds the log."""


class SnapshotHeader(msgspec.Struct, array_like=True, frozen=True):
    upto_seq: int  # the state is the fold of seqs 0..upto_seq
    event_seq: int  # where its workflow.snapshot event is (upto_seq + 1)
    digest: str  # of the state bytes


_encoder = msgspec.msgpack.Encoder()
_state_decoder = msgspec.msgpack.Decoder(WorkflowState)
_header_decoder = msgspec.msgpack.Decoder(SnapshotHeader)


def digest(data: bytes) -> str:
    """crc32 of the state bytes: cheap on 100+ MB, and enough to tell one snapshot from another."""
    return f"crc32:{zlib.crc32(data):08x}"


def snapshot_due(state: WorkflowState, every: int) -> bool:
    """True if the writer should take a snapshot now: ``every`` events (> 0) since the last one,
    and the workflow is RUNNING (nothing may follow a final event)."""
    return every > 0 and state.status is WorkflowStatus.RUNNING and state.last_seq - state.last_snapshot_seq >= every


def take_snapshot(state: WorkflowState, ts: float | None = None) -> tuple[WorkflowSnapshotted, bytes]:
    """The event that announces a snapshot of ``state`` (to append at ``state.next_seq``) and the
    blob to store once that event is durable."""
    data = _encoder.encode(state)
    event = WorkflowSnapshotted(ts=time.time() if ts is None else ts, upto_seq=state.last_seq,
                                digest=digest(data), size=len(data), tasks=len(state.tasks))
    header = _encoder.encode(SnapshotHeader(state.last_seq, state.last_seq + 1, event.digest))
    return event, b"".join((_HEAD.pack(_MAGIC, len(header)), header, data))


def read_header(blob: bytes) -> SnapshotHeader:
    """The header of a snapshot blob (cheap: the state is not decoded).

    Raises:
        SnapshotError: not a snapshot blob of this format.
    """
    if len(blob) < _HEAD.size:
        raise SnapshotError("snapshot blob is shorter than its header")
    magic, length = _HEAD.unpack_from(blob)
    if magic != _MAGIC:
        raise SnapshotError(f"snapshot blob has magic {magic!r}, not {_MAGIC!r}")
    try:
        return _header_decoder.decode(memoryview(blob)[_HEAD.size:_HEAD.size + length])
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise SnapshotError(f"snapshot header does not decode: {exc}") from None


def decode_snapshot(blob: bytes) -> tuple[SnapshotHeader, WorkflowState]:
    """The header and the state of a snapshot blob, the state checked against its digest.

    Raises:
        SnapshotError: damaged, or not a snapshot of this format.
    """
    header = read_header(blob)
    _magic, length = _HEAD.unpack_from(blob)
    data = memoryview(blob)[_HEAD.size + length:]
    if digest(data) != header.digest:
        raise SnapshotError("snapshot state does not match its digest")
    try:
        with gc_paused():  # hundreds of thousands of objects, none in a cycle
            state = _state_decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise SnapshotError(f"snapshot state does not decode: {exc}") from None
    if state.last_seq != header.upto_seq:
        raise SnapshotError(f"snapshot state is as of seq {state.last_seq}, its header says {header.upto_seq}")
    return header, state


def announces(event: object, header: SnapshotHeader) -> bool:
    """True if ``event`` (the record at ``header.event_seq``) is the event of this very snapshot."""
    return (type(event) is WorkflowSnapshotted and event.upto_seq == header.upto_seq
            and event.digest == header.digest)
