"""Group commit for one workflow's log, inside the driving actor.

Events are checked against the fold as they are queued (so an illegal event is
never written) and appended in batches: while one append is in flight, new
events queue up and go out together in the next, so one fsync or one PUT
covers many events. A failed append (a conflict means another writer took the
log) breaks the writer; the run that owns it must stop.
"""

from __future__ import annotations

import asyncio

from replay import Event, WorkflowState, apply, encode_event
from storage_backends import Storage


class LogWriter:
    def __init__(self, storage: Storage, workflow_id: str, state: WorkflowState):
        self.storage = storage
        self.workflow_id = workflow_id
        self.state = state  # runs ahead of the durable log by the queued events
        self._durable_next_seq = state.next_seq
        self._queue: list[bytes] = []
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
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.ensure_future(self._flush())

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

    def close(self) -> None:
        """Refuse every later event, and drop those queued but not yet appended."""
        self.failure = self.failure or WorkflowStoppedError(self.workflow_id)
        self._queue.clear()

    async def drain(self) -> None:
        """Wait until everything queued so far is durable (or the writer broke)."""
        while self._flusher is not None and not self._flusher.done():
            await asyncio.shield(self._flusher)
        if self.failure is not None:
            raise self.failure


class WorkflowStoppedError(RuntimeError):
    """An event for a run that was stopped (its manager gave up the lease)."""

    def __init__(self, workflow_id: str):
        super().__init__(f"the run of workflow {workflow_id!r} was stopped; nothing more is appended")


def _consume_exception(future: asyncio.Future) -> None:
    if not future.cancelled():
        future.exception()
