"""Group commit for one workflow's log, inside the driving actor.

Events are checked against the fold as they are queued (so an illegal event is
never written) and appended in batches: while one append is in flight, new
events queue up and go out together in the next, so one fsync or one PUT
covers many events. A failed append (a conflict means another writer took the
log) breaks the writer; the run that owns it must stop.

Compaction: every ``snapshot_every`` events the writer takes a snapshot of the fold
(:mod:`replay._snapshot`): the ``workflow.snapshot`` event is queued right after the event it
covers, and the snapshot blob is stored once that event is durable, so a reader never finds a
blob whose event is not in the log. A snapshot that could not be stored is only a slower load.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from replay import (
    DEFAULT_SNAPSHOT_EVERY,
    SNAPSHOT_BLOB,
    Event,
    WorkflowState,
    apply,
    encode_event,
    snapshot_due,
    take_snapshot,
)
from storage_backends import Storage

logger = logging.getLogger(__name__)


class LogWriter:
    def __init__(self, storage: Storage, workflow_id: str, state: WorkflowState,
                 snapshot_every: int = DEFAULT_SNAPSHOT_EVERY, unwritten: Sequence[bytes] = ()):
        """``state`` is the fold of the log; if ``unwritten`` records are given, it includes them
        although nobody appended them yet: the writer's first append puts them first."""
        self.storage = storage
        self.snapshot_every = snapshot_every
        self._snapshot: tuple[int, bytes] | None = None  # (its event's seq, blob) until that event is durable
        self._snapshot_store: asyncio.Task | None = None
        self._no_snapshot_before = 0  # after a snapshot that could not be taken: wait this long
        self.workflow_id = workflow_id
        self.state = state  # runs ahead of the durable log by the queued events
        self._durable_next_seq = state.next_seq - len(unwritten)
        self._queue: list[bytes] = list(unwritten)
        self._waiters: list[asyncio.Future] = []
        self._flusher: asyncio.Task | None = None
        self.failure: BaseException | None = None

    def add(self, *events: Event) -> None:
        """Queue ``events``; they become durable with the next append (see :meth:`write`)."""
        if self.failure is not None:
            raise self.failure
        for event in events:
            apply(self.state, event)
            self._queue.append(encode_event(event))
        if snapshot_due(self.state, self.snapshot_every) and self.state.last_seq >= self._no_snapshot_before:
            self._take_snapshot()
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.ensure_future(self._flush())

    def _take_snapshot(self) -> None:
        """Queue a snapshot event now (right after the last event it covers) and keep its blob."""
        try:
            event, blob = take_snapshot(self.state)
        except Exception as exc:  # never the run's failure: only a slower load
            logger.warning("could not take a snapshot of workflow %s (%s: %s); trying again after %d more "
                           "events", self.workflow_id, type(exc).__name__, exc, self.snapshot_every)
            self._no_snapshot_before = self.state.last_seq + self.snapshot_every
            return
        apply(self.state, event)
        self._queue.append(encode_event(event))
        self._snapshot = (self.state.last_seq, blob)

    async def write(self, *events: Event) -> None:
        """Queue ``events`` and wait until they are durable."""
        self.add(*events)
        waiter = asyncio.get_running_loop().create_future()
        waiter.add_done_callback(_consume_exception)
        self._waiters.append(waiter)
        await waiter

    async def _flush(self) -> None:
        while self._queue:
            records, waiters = self._queue, self._waiters
            self._queue, self._waiters = [], []
            try:
                self._durable_next_seq = await self.storage.append(
                    self.workflow_id, records, self._durable_next_seq)
            except BaseException as exc:
                self.failure = exc
                for waiter in waiters + self._waiters:
                    if not waiter.done():
                        waiter.set_exception(exc)
                self._queue, self._waiters = [], []
                return
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)
            if self._snapshot is not None and self._snapshot[0] < self._durable_next_seq:
                blob, self._snapshot = self._snapshot[1], None
                self._snapshot_store = asyncio.ensure_future(self._store_snapshot(blob, self._snapshot_store))

    async def _store_snapshot(self, blob: bytes, previous: asyncio.Task | None) -> None:
        if previous is not None:  # never let an older snapshot land after a newer one
            await asyncio.wait([previous])
        try:
            await self.storage.put_blob(self.workflow_id, SNAPSHOT_BLOB, blob)
        except Exception as exc:  # only a slower load: the next snapshot tries again
            logger.warning("could not store the snapshot of workflow %s (%s: %s); loading it folds its whole "
                           "log until the next snapshot", self.workflow_id, type(exc).__name__, exc)

    def close(self) -> None:
        """Refuse every later event, and drop those queued but not yet appended."""
        self.failure = self.failure or WorkflowStoppedError(self.workflow_id)
        self._queue.clear()

    async def drain(self) -> None:
        """Wait until everything queued so far is durable (or the writer broke)."""
        while self._flusher is not None and not self._flusher.done():
            await asyncio.shield(self._flusher)
        if self._snapshot_store is not None:
            await asyncio.wait([self._snapshot_store])
        if self.failure is not None:
            raise self.failure


class WorkflowStoppedError(RuntimeError):
    """An event for a run that was stopped (its manager gave up the lease)."""

    def __init__(self, workflow_id: str):
        super().__init__(f"the run of workflow {workflow_id!r} was stopped; nothing more is appended")


def _consume_exception(future: asyncio.Future) -> None:
    if not future.cancelled():
        future.exception()
