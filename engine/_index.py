"""The derived status index that keeps ``list_all`` fast with many workflows.

It is an append-only *system log* (``_status_index``) of small records, plus a
snapshot blob that folds a prefix of it. The index is never the truth, only a
shortcut, and it is sound to trust only because of what it holds:

* it records only **final** statuses (SUCCESSFUL, CANCELED), which a log can
  never leave (the fold rejects any event after them), so an entry can lag
  behind its log but never contradict it;
* ``delete`` appends a tombstone *before* it removes the log, so an id that is
  deleted and reused never inherits its old entry;
* every other status (RUNNING, FAILED, PENDING, or no entry at all, e.g. after
  a crash between a log append and the index update) is folded from the log,
  and a final status found that way is written back (the index repairs itself).

``rebuild`` recomputes it from the logs alone (``ray-durable reindex``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

import msgspec

from replay import WorkflowStatus, load_state
from storage_backends import AppendConflictError, BlobNotFoundError, Storage

INDEX_LOG = "_status_index"
SNAPSHOT_BLOB = "snapshot"
FINAL = frozenset({WorkflowStatus.SUCCESSFUL, WorkflowStatus.CANCELED})
COMPACT_AFTER = 500  # records past the snapshot before a reader writes a new one


class _Record(msgspec.Struct, omit_defaults=True):
    final: dict[str, str] = {}  # workflow id -> final status
    deleted: list[str] = []


class _Snapshot(msgspec.Struct):
    upto_seq: int  # the snapshot folds index records [0, upto_seq)
    final: dict[str, str]


_record_encoder = msgspec.msgpack.Encoder()
_record_decoder = msgspec.msgpack.Decoder(_Record)
_snapshot_decoder = msgspec.msgpack.Decoder(_Snapshot)


async def load(storage: Storage) -> dict[str, WorkflowStatus]:
    """Workflow id -> final status, as the index knows it (compacting it when it grew)."""
    try:
        snapshot = _snapshot_decoder.decode(await storage.get_blob(INDEX_LOG, SNAPSHOT_BLOB))
    except BlobNotFoundError:
        snapshot = _Snapshot(0, {})
    final = dict(snapshot.final)
    tail = 0
    next_seq = snapshot.upto_seq
    async for record in storage.read(INDEX_LOG, from_seq=snapshot.upto_seq):
        _apply(final, _record_decoder.decode(record.data))
        tail += 1
        next_seq = record.seq + 1
    if tail > COMPACT_AFTER:
        await storage.put_blob(INDEX_LOG, SNAPSHOT_BLOB, _record_encoder.encode(_Snapshot(next_seq, final)))
    return {wid: WorkflowStatus(status) for wid, status in final.items()}


def _apply(final: dict[str, str], record: _Record) -> None:
    final.update(record.final)
    for workflow_id in record.deleted:
        final.pop(workflow_id, None)


async def append(storage: Storage, final: dict[str, WorkflowStatus] | None = None,
                 deleted: Iterable[str] = ()) -> None:
    """Append one index record (compare-and-append, retried: any writer may add to the index)."""
    record = _Record(final={w: str(s) for w, s in (final or {}).items() if s in FINAL},
                     deleted=list(deleted))
    if not record.final and not record.deleted:
        return
    data = _record_encoder.encode(record)
    for _ in range(100):
        try:
            await storage.append(INDEX_LOG, [data], await storage.next_seq(INDEX_LOG))
            return
        except AppendConflictError:
            await asyncio.sleep(0.001)
    raise RuntimeError("the status index log kept changing under 100 appends in a row")


class IndexWriter:
    """Group commit of index updates from the many workflows one manager drives."""

    def __init__(self, storage: Storage):
        self.storage = storage
        self._pending: dict[str, WorkflowStatus] = {}
        self._waiters: list[asyncio.Future] = []
        self._flusher: asyncio.Task | None = None

    def add(self, workflow_id: str, status: WorkflowStatus) -> asyncio.Future:
        """Queue a final status; the future is done when it is stored (or storing it failed,
        which is harmless: list_all folds what the index lacks and repairs it)."""
        done = asyncio.get_running_loop().create_future()
        if status not in FINAL:
            done.set_result(None)
            return done
        self._pending[workflow_id] = status
        self._waiters.append(done)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.ensure_future(self._flush())
        return done

    async def _flush(self) -> None:
        while self._pending:
            batch, waiters = self._pending, self._waiters
            self._pending, self._waiters = {}, []
            try:
                await append(self.storage, batch)
            except Exception:
                pass
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)


async def statuses(storage: Storage, workflow_ids: list[str], concurrency: int = 16
                   ) -> dict[str, WorkflowStatus | None]:
    """The logged status of each workflow: final ones from the index, the rest folded (and repaired)."""
    index = await load(storage)
    out: dict[str, WorkflowStatus | None] = {}
    to_fold = []
    for workflow_id in workflow_ids:
        status = index.get(workflow_id)
        if status in FINAL:
            out[workflow_id] = status
        else:
            to_fold.append(workflow_id)
    limit = asyncio.Semaphore(concurrency)

    async def fold_one(workflow_id: str) -> None:
        async with limit:
            out[workflow_id] = (await load_state(storage, workflow_id)).status

    await asyncio.gather(*(fold_one(w) for w in to_fold))
    repaired = {w: out[w] for w in to_fold if out[w] in FINAL}
    if repaired:
        await append(storage, repaired)
    return out


async def rebuild(storage: Storage, progress: Callable[[int, int], None] | None = None,
                  concurrency: int = 16) -> dict[str, int]:
    """Recompute the index from the logs alone and store it as a fresh snapshot."""
    workflow_ids = await storage.list_logs()
    start_seq = await storage.next_seq(INDEX_LOG)
    final: dict[str, str] = {}
    done = 0
    limit = asyncio.Semaphore(concurrency)

    async def fold_one(workflow_id: str) -> None:
        nonlocal done
        async with limit:
            status = (await load_state(storage, workflow_id)).status
        if status in FINAL:
            final[workflow_id] = str(status)
        done += 1
        if progress is not None:
            progress(done, len(workflow_ids))

    await asyncio.gather(*(fold_one(w) for w in workflow_ids))
    # Records appended while we folded are newer than what we read; replay them on top.
    async for record in storage.read(INDEX_LOG, from_seq=start_seq):
        _apply(final, _record_decoder.decode(record.data))
        start_seq = record.seq + 1
    await storage.put_blob(INDEX_LOG, SNAPSHOT_BLOB, _record_encoder.encode(_Snapshot(start_seq, final)))
    return {"workflows": len(workflow_ids), "final": len(final)}
