"""The derived status index that keeps ``list_all`` fast with many workflows.

It is an append-only *system log* (``system:status_index``, kept by every backend
apart from the workflows' logs) of small records, plus a snapshot blob that
folds a prefix of it. The index is never the truth, only a
shortcut. Each entry says either "the log, up to and including event ``seq``,
folds to ``status``", or, as a *claim* (no status), "an event that may take
the workflow out of its status is about to be appended at ``seq``". Entries
merge by seq, and a status at the claimed seq beats the claim, so it does not
matter in which order racing writers land: a FAILED seen at seq F (say by a
slow ``list_all`` repair) loses to a claim at F+1.

It trusts three statuses, and that is sound because:

* SUCCESSFUL and CANCELED are final: the fold rejects any event after them;
* FAILED is left only by ``workflow.run_started`` (resume, ``resume_all``,
  ``run`` of an existing id) or ``workflow.canceled``, and every writer of
  those appends a durable claim for the event's seq *first* (the runner's
  ``start`` and ``cancel``, ``_management.cancel``). So if the index says
  FAILED, the log ends FAILED. A crash between the claim and the append
  leaves the claim: the workflow is folded from its log until its next event
  supersedes the claim (correct, just not the fast path);
* ``delete`` appends a tombstone before it removes the log, so an id that is
  deleted and reused never inherits its old entry.

The tombstone comes with a *deletion mark* (``deleting``: the id and the submission time of
the log being deleted), cleared once the log and its blobs are gone. A marked workflow whose
log is still there (a delete or a gc cut short by a crash) is left out of every listing and
of ``rebuild``, and the next gc finishes it (:mod:`engine.store._retention`). The submission
time tells that log from a new workflow that reuses the id.

Everything else (RUNNING, PENDING, a claim, no entry at all, e.g. after a
crash between a log append and the index update) is folded from the log, and
a trusted status found that way is written back: the index repairs itself.

This is format 2. Format 1 (records with a ``final`` map and no seqs, written
before FAILED was indexed, by code that resumed without claiming) is still
read, but only its SUCCESSFUL/CANCELED entries count and its snapshot blob is
ignored: a FAILED entry is trusted only if a claiming writer wrote it.

Beside each trusted entry the index may keep the workflow's :class:`Times` as of the
same seq (start, end, failed task), so that a listing with those columns needs no fold
either. They are written by whoever folds the log anyway (a listing that finds them
missing or older than the entry, ``rebuild``); a listing folds a finished workflow once.

``rebuild`` recomputes it from the logs (``ray-durable reindex``).

Stores written by ray-durable 0.1 kept the index in the log ``_status_index``,
an id that workflows may use now. :func:`ensure_current` moves it, once per
store, before anything else reads or writes the index (see there), and
:func:`list_workflow_ids` is the list of workflows that never shows it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import msgspec

from replay import WorkflowState, WorkflowStatus, load_state
from storage_backends import AppendConflictError, BlobNotFoundError, Storage, StorageError, system_id

logger = logging.getLogger(__name__)

INDEX_LOG = system_id("status_index")
LEGACY_INDEX_LOG = "_status_index"  # where ray-durable 0.1 kept it (a plain log id now)
SNAPSHOT_BLOB = "snapshot-v2"  # format 2; format 1's "snapshot" blob is never read
FINAL = frozenset({WorkflowStatus.SUCCESSFUL, WorkflowStatus.CANCELED})
TRUSTED = FINAL | {WorkflowStatus.FAILED}
COMPACT_AFTER = 500  # records past the snapshot before a reader writes a new one


class Entry(msgspec.Struct, array_like=True, frozen=True):
    """The workflow's status as of its log event ``seq``; ``status == ""`` is a claim on ``seq``."""

    seq: int
    status: str = ""

    @property
    def trusted(self) -> WorkflowStatus | None:
        """The status list_all may take from the index without folding the log, if any."""
        return WorkflowStatus(self.status) if self.status in TRUSTED else None

    def supersedes(self, other: Entry) -> bool:
        return self.seq > other.seq or (self.seq == other.seq and self.status != "")


class Times(msgspec.Struct, array_like=True, frozen=True):
    """When a workflow ran, as its log says up to event ``seq`` (Unix seconds)."""

    seq: int
    start: float | None = None
    end: float | None = None
    failed_task: str | None = None

    @classmethod
    def of(cls, state: WorkflowState) -> Times:
        failed = state.failed_task_id if state.status is WorkflowStatus.FAILED else None
        return cls(state.last_seq, state.start_time, state.end_time, failed)


class _Record(msgspec.Struct, omit_defaults=True):
    entries: dict[str, Entry] = {}
    deleted: list[str] = []
    final: dict[str, str] = {}  # format 1 (read only): workflow id -> final status, no seq
    times: dict[str, Times] = {}  # added later: older readers skip it
    deleting: dict[str, float] = {}  # deletion marks: id -> submission time of its log; < 0 clears


class _Snapshot(msgspec.Struct):
    upto_seq: int  # the snapshot folds index records [0, upto_seq)
    entries: dict[str, Entry]
    times: dict[str, Times] = {}
    deleting: dict[str, float] = {}


_encoder = msgspec.msgpack.Encoder()
_record_decoder = msgspec.msgpack.Decoder(_Record)
_snapshot_decoder = msgspec.msgpack.Decoder(_Snapshot)


_current: weakref.WeakSet[Storage] = weakref.WeakSet()  # storages ensure_current has settled
_unmoved: weakref.WeakSet[Storage] = weakref.WeakSet()  # ...that hold a 0.1 index it could not move


async def ensure_current(storage: Storage) -> None:
    """Move a 0.1 store's index from ``_status_index`` to :data:`INDEX_LOG`, once per store.

    Every reader and writer of the index calls this first (it costs a look or
    two the first time per storage object, nothing after). The old log is an
    index only if its first record decodes as an index record; a workflow that
    uses the id ``_status_index`` in a newer store starts with a submission
    event and is left alone. Its entries, claims included, go to the new index
    as its record 0, with a compare-and-append at seq 0: whichever process
    moves it first wins, and nothing else can have written the new index
    before (every writer calls this first). Then the old log is deleted. An
    older engine still writing the old log meanwhile is the "one engine version
    per storage at a time" limit of the README. Storage that refuses the writes
    (read-only credentials) keeps the old log; :func:`list_workflow_ids` still
    hides it, and statuses are folded from the logs (correct, only slower).
    """
    if _settled(storage):
        return
    if await storage.next_seq(INDEX_LOG) == 0:
        try:
            entries = await _read_legacy_index(storage)
        except StorageError:
            # Another process may have moved it and deleted the old log while we read it
            # (S3 lists a key, then the GET finds it gone); then the new index has its record 0.
            if await storage.next_seq(INDEX_LOG) == 0:
                raise
            entries = None
        if entries is not None:
            await _move_legacy_index(storage, entries)
    _remember(_current, storage)


async def _read_legacy_index(storage: Storage) -> dict[str, Entry] | None:
    """The entries of a 0.1 index in ``_status_index``, or None if there is none."""
    if not await _is_legacy_index(storage):
        return None
    entries, _times, _next_seq = await _read_index(storage, LEGACY_INDEX_LOG, compact=False)
    return entries


async def _move_legacy_index(storage: Storage, entries: dict[str, Entry]) -> None:
    try:
        try:
            await storage.append(INDEX_LOG, [_encoder.encode(_Record(entries=entries))], 0)
            logger.info("moved the status index of %s from %s to %s (%d entries)",
                        storage.url, LEGACY_INDEX_LOG, INDEX_LOG, len(entries))
        except AppendConflictError:
            pass  # another process moved it first
        await storage.delete(LEGACY_INDEX_LOG)
    except StorageError as exc:
        logger.info("could not move the status index of %s from %s: %s", storage.url, LEGACY_INDEX_LOG, exc)
        _remember(_unmoved, storage)


def _remember(found: weakref.WeakSet, storage: Storage) -> None:
    with contextlib.suppress(TypeError):  # an unhashable third-party storage: look every time
        found.add(storage)


def _settled(storage: Storage) -> bool:
    try:
        return storage in _current
    except TypeError:
        return False


async def _is_legacy_index(storage: Storage) -> bool:
    """Whether ``_status_index`` holds a 0.1 status index (not a workflow of that name)."""
    async with contextlib.aclosing(storage.read(LEGACY_INDEX_LOG)) as records:
        async for record in records:
            try:
                _record_decoder.decode(record.data)
            except msgspec.DecodeError:  # an event: its format byte is no msgpack map
                return False
            return True
    return False


async def list_workflow_ids(storage: Storage) -> list[str]:
    """Every workflow's id, sorted: :meth:`Storage.list_logs` without a 0.1 store's old index."""
    await ensure_current(storage)
    workflow_ids = await storage.list_logs()
    with contextlib.suppress(TypeError):
        if storage in _unmoved:
            workflow_ids = [w for w in workflow_ids if w != LEGACY_INDEX_LOG]
    return workflow_ids


async def load_entries(storage: Storage) -> dict[str, Entry]:
    """Workflow id -> entry (claims included), compacting the index when it grew."""
    entries, _times, _next_seq = await _read_index(storage)
    return entries


async def _read_index(storage: Storage, log_id: str = INDEX_LOG, compact: bool = True,
                      marks: dict[str, float] | None = None) -> tuple[dict[str, Entry], dict[str, Times], int]:
    """Entries, times and the index log's next seq; ``marks`` (if given) is filled with the deletion marks."""
    if log_id == INDEX_LOG:
        await ensure_current(storage)
    try:
        snapshot = _snapshot_decoder.decode(await storage.get_blob(log_id, SNAPSHOT_BLOB))
    except BlobNotFoundError:
        snapshot = _Snapshot(0, {})
    entries = dict(snapshot.entries)
    times = dict(snapshot.times)
    found = dict(snapshot.deleting)
    tail = 0
    next_seq = snapshot.upto_seq
    async for record in storage.read(log_id, from_seq=snapshot.upto_seq):
        _apply(entries, _record_decoder.decode(record.data), times, found)
        tail += 1
        next_seq = record.seq + 1
    if compact and tail > COMPACT_AFTER:
        snapshot = _Snapshot(next_seq, entries, times, found)
        await storage.put_blob(log_id, SNAPSHOT_BLOB, _encoder.encode(snapshot))
    if marks is not None:
        marks.update(found)
    return entries, times, next_seq


async def deletion_marks(storage: Storage) -> dict[str, float]:
    """Workflow id -> submission time of its log, for every delete begun and not finished."""
    marks: dict[str, float] = {}
    await _read_index(storage, marks=marks)
    return marks


async def _load_marked(storage: Storage, workflow_id: str, marks: dict[str, float]) -> WorkflowState:
    """load_state; a marked log that cannot be read (an S3 delete cut short removed its first
    batches) reads as gone: its delete is what the next gc finishes."""
    try:
        return await load_state(storage, workflow_id)
    except (StorageError, ValueError):  # (LogCorruptedError, EventRecordError, IllegalTransitionError)
        if workflow_id not in marks:
            raise
        return WorkflowState()


def hidden(marks: dict[str, float], workflow_id: str, state: WorkflowState) -> bool:
    """True if the log folded to ``state`` is one a begun delete marked (a new log under the id is not)."""
    mark = marks.get(workflow_id)
    return mark is not None and (state.status is None or state.start_time == mark)


async def load(storage: Storage) -> dict[str, WorkflowStatus]:
    """Workflow id -> the status the index vouches for (SUCCESSFUL, CANCELED, FAILED)."""
    entries = await load_entries(storage)
    return {wid: entry.trusted for wid, entry in entries.items() if entry.trusted is not None}


def _merge(entries: dict[str, Entry], workflow_id: str, entry: Entry) -> None:
    old = entries.get(workflow_id)
    if old is None or entry.supersedes(old):
        entries[workflow_id] = entry


def _apply(entries: dict[str, Entry], record: _Record, times: dict[str, Times] | None = None,
           marks: dict[str, float] | None = None) -> None:
    for workflow_id, status in record.final.items():
        if status in FINAL:  # format 1: final statuses were sound then too; nothing else is
            _merge(entries, workflow_id, Entry(-1, status))
    for workflow_id, entry in record.entries.items():
        _merge(entries, workflow_id, entry)
    if times is not None:
        for workflow_id, seen in record.times.items():
            old = times.get(workflow_id)
            if old is None or seen.seq >= old.seq:
                times[workflow_id] = seen
    for workflow_id in record.deleted:
        entries.pop(workflow_id, None)
        if times is not None:
            times.pop(workflow_id, None)
    if marks is not None:
        for workflow_id, started in record.deleting.items():
            if started < 0:
                marks.pop(workflow_id, None)
            else:
                marks[workflow_id] = started


async def append(storage: Storage, entries: dict[str, Entry] | None = None,
                 deleted: Iterable[str] = (), next_seq: int | None = None,
                 times: dict[str, Times] | None = None, deleting: dict[str, float] | None = None) -> int | None:
    """Append one index record (compare-and-append, retried: any writer may add to the index).

    Args:
        next_seq: the index log's next seq, if the caller knows it (it saves a look).
        times: :class:`Times` to keep beside trusted entries.
        deleting: deletion marks to set (id -> submission time) or clear (id -> -1).

    Returns:
        the index log's next seq after the record, or None if there was nothing to append.
    """
    record = _Record(entries=dict(entries or {}), deleted=list(deleted), times=dict(times or {}),
                     deleting=dict(deleting or {}))
    if not record.entries and not record.deleted and not record.times and not record.deleting:
        return None
    await ensure_current(storage)
    data = _encoder.encode(record)
    for _ in range(100):
        if next_seq is None:
            next_seq = await storage.next_seq(INDEX_LOG)
        try:
            return await storage.append(INDEX_LOG, [data], next_seq)
        except AppendConflictError as exc:
            next_seq = exc.actual_next_seq  # retried at once when known (a stale hint, say)
            if next_seq is None:
                await asyncio.sleep(0.001)
    raise RuntimeError("the status index log kept changing under 100 appends in a row")


async def claim(storage: Storage, workflow_id: str, seq: int) -> None:
    """Durably claim ``seq`` of the workflow's log; call before appending an event that leaves FAILED."""
    await append(storage, {workflow_id: Entry(seq)})


async def record(storage: Storage, workflow_id: str, status: WorkflowStatus, seq: int) -> None:
    """Record ``status`` as of log event ``seq`` (untrusted statuses are not indexed)."""
    if status in TRUSTED:
        await append(storage, {workflow_id: Entry(seq, str(status))})


class IndexWriter:
    """Group commit of index updates from the many workflows one manager drives."""

    def __init__(self, storage: Storage):
        self.storage = storage
        # The index log is never deleted (rebuild and compaction write beside it), so the storage
        # need not prove its cached tail before each append (on S3, a HEAD per update).
        storage.hold(INDEX_LOG)
        self._pending: dict[str, Entry] = {}
        self._waiters: list[tuple[asyncio.Future, bool]] = []
        self._flusher: asyncio.Task | None = None
        self._next_seq: int | None = None  # the index log's, after this writer's last append

    def record(self, workflow_id: str, status: WorkflowStatus, seq: int) -> asyncio.Future:
        """Queue a status as of log event ``seq``; the future is done when it is stored, or
        when storing it failed (harmless: list_all folds what the index lacks and repairs it)."""
        if status not in TRUSTED:
            done = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done
        return self._queue(workflow_id, Entry(seq, str(status)), strict=False)

    def claim(self, workflow_id: str, seq: int) -> asyncio.Future:
        """Queue a claim on ``seq``; the future fails if it could not be stored, and then
        the caller must not append at ``seq`` (the index could keep a stale FAILED)."""
        return self._queue(workflow_id, Entry(seq), strict=True)

    def _queue(self, workflow_id: str, entry: Entry, strict: bool) -> asyncio.Future:
        done = asyncio.get_running_loop().create_future()
        done.add_done_callback(_consume_exception)
        _merge(self._pending, workflow_id, entry)
        self._waiters.append((done, strict))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.ensure_future(self._flush())
        return done

    async def _flush(self) -> None:
        while self._pending:
            batch, waiters = self._pending, self._waiters
            self._pending, self._waiters = {}, []
            error = None
            try:
                self._next_seq = await append(self.storage, batch, next_seq=self._next_seq)
            except Exception as exc:
                self._next_seq = None
                error = exc
                logger.warning("could not update the status index (%s: %s); listings fold the logs it "
                               "lacks and repair it", type(exc).__name__, exc)
            for waiter, strict in waiters:
                if waiter.done():
                    continue
                if error is not None and strict:
                    waiter.set_exception(error)
                else:
                    waiter.set_result(None)


def _consume_exception(future: asyncio.Future) -> None:
    if not future.cancelled():
        future.exception()


@dataclass
class Lookup:
    """What :func:`lookup` found: every workflow's logged status, and which ones it had to fold."""

    statuses: dict[str, WorkflowStatus | None] = field(default_factory=dict)
    folded: set[str] = field(default_factory=set)
    # The folded states of those not final (RUNNING, PENDING, FAILED...): whose lease decides
    # their status, and what start-up recovery looks at.
    open_states: dict[str, WorkflowState] = field(default_factory=dict)


async def lookup(storage: Storage, workflow_ids: list[str], concurrency: int = 16) -> Lookup:
    """The logged status of each workflow: trusted ones from the index, the rest folded (and repaired)."""
    rows = await listing(storage, workflow_ids, need_times=False, concurrency=concurrency)
    return Lookup({wid: row.status for wid, row in rows.items()},
                  {wid for wid, row in rows.items() if row.folded},
                  {wid: row.state for wid, row in rows.items() if row.state is not None})


async def statuses(storage: Storage, workflow_ids: list[str], concurrency: int = 16
                   ) -> dict[str, WorkflowStatus | None]:
    """The logged status of each workflow (see :func:`lookup`)."""
    return (await lookup(storage, workflow_ids, concurrency)).statuses


async def rebuild(storage: Storage, progress: Callable[[int, int], None] | None = None,
                  concurrency: int = 16) -> dict[str, int]:
    """Recompute the index from the logs and store it as a fresh snapshot.

    Statuses come from the logs alone. A claim in the current index survives
    only if it is ahead of its log (a resume between its claim and its append,
    or one that crashed there): dropping it could let a stale FAILED stand.
    """
    marks: dict[str, float] = {}
    current, _times, start_seq = await _read_index(storage, marks=marks)
    workflow_ids = await list_workflow_ids(storage)
    entries: dict[str, Entry] = {}
    times: dict[str, Times] = {}
    done = 0
    limit = asyncio.Semaphore(concurrency)

    async def fold_one(workflow_id: str) -> None:
        nonlocal done
        async with limit:
            state = await _load_marked(storage, workflow_id, marks)
        if hidden(marks, workflow_id, state):  # being deleted: no entry, as its tombstone said
            state = WorkflowState()
        if state.status in TRUSTED:
            entries[workflow_id] = Entry(state.last_seq, str(state.status))
            times[workflow_id] = Times.of(state)
        claimed = current.get(workflow_id)
        if claimed is not None and claimed.status == "" and claimed.seq > state.last_seq:
            entries[workflow_id] = claimed
        done += 1
        if progress is not None:
            progress(done, len(workflow_ids))

    await asyncio.gather(*(fold_one(w) for w in workflow_ids))
    # Records appended while we folded may be newer than what we read; merge them in.
    async for index_record in storage.read(INDEX_LOG, from_seq=start_seq):
        _apply(entries, _record_decoder.decode(index_record.data), times, marks)
        start_seq = index_record.seq + 1
    await storage.put_blob(INDEX_LOG, SNAPSHOT_BLOB, _encoder.encode(_Snapshot(start_seq, entries, times, marks)))
    final = sum(1 for entry in entries.values() if entry.status in FINAL)
    failed = sum(1 for entry in entries.values() if entry.status == WorkflowStatus.FAILED)
    return {"workflows": len(workflow_ids), "final": final, "failed": failed}


@dataclass
class Row:
    """One workflow of a listing: its logged status and :class:`Times` (from the index or its log)."""

    status: WorkflowStatus | None
    times: Times
    folded: bool
    state: WorkflowState | None = None  # the fold of one not final (its owner decides its status)


async def listing(storage: Storage, workflow_ids: list[str], skip: Callable[[WorkflowStatus], bool] = (
        lambda status: False), need_times: bool = True, concurrency: int = 16) -> dict[str, Row]:
    """Each workflow's logged status and times, folding only the logs the index cannot answer for.

    A trusted entry is answered from the index, with its times if they are as of its own seq
    (``need_times``: else the log is folded). Others are folded; a trusted status found that way
    is written back with its times, so each finished workflow is folded once. ``skip(status)``
    leaves out, unfolded, workflows whose trusted status it rejects (a listing filtered by status).
    Rows answered from the index without times carry ``Times(entry seq)`` (no start or end).
    """
    marks: dict[str, float] = {}
    index, times, _next_seq = await _read_index(storage, marks=marks)
    out: dict[str, Row] = {}
    to_fold = []
    for workflow_id in workflow_ids:
        if workflow_id in marks:  # a delete begun: folded, to tell its log from a new one
            to_fold.append(workflow_id)
            continue
        entry = index.get(workflow_id)
        trusted = entry.trusted if entry is not None else None
        if trusted is not None and skip(trusted):
            continue
        seen = times.get(workflow_id)
        if trusted is not None and seen is not None and seen.seq == entry.seq:
            out[workflow_id] = Row(trusted, seen, False)
        elif trusted is not None and not need_times:
            out[workflow_id] = Row(trusted, Times(entry.seq), False)
        else:
            to_fold.append(workflow_id)
    limit = asyncio.Semaphore(concurrency)
    repaired: dict[str, Entry] = {}
    repaired_times: dict[str, Times] = {}

    async def fold_one(workflow_id: str) -> None:
        async with limit:
            state = await _load_marked(storage, workflow_id, marks)
        if hidden(marks, workflow_id, state):
            return
        out[workflow_id] = Row(state.status, Times.of(state), True, None if state.status in FINAL else state)
        if state.status in TRUSTED:
            repaired[workflow_id] = Entry(state.last_seq, str(state.status))
            repaired_times[workflow_id] = Times.of(state)

    await asyncio.gather(*(fold_one(w) for w in to_fold))
    try:
        await append(storage, repaired, times=repaired_times)
    except StorageError as exc:  # e.g. read-only credentials: the answer stands, only slower next time
        logger.info("could not write what a listing folded back to the status index: %s", exc)
    return {workflow_id: out[workflow_id] for workflow_id in workflow_ids if workflow_id in out}
