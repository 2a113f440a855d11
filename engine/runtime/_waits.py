"""The waits of one workflow run: timers, mailbox events and listener polls, on the driving actor.

A wait task (``workflow.sleep``, ``workflow.wait_for_event``) never becomes a Ray task. The
run hands it here, and it waits as a coroutine of the driving actor's event loop:

* a **timer** records its absolute deadline (``timer.set``) and sleeps on the loop until
  then; a later attempt (a resume) records the deadline the first one set, so a resume after
  it fires at once. Its firing is the task's ``task.completed`` (value None, as in 2.47).
* a **mailbox** wait (``HTTPListener``) records ``event.awaited`` with its key, then reads the
  workflow's mailbox until an event with that key is there: at once if it was sent before,
  else when a sender nudges the actor (:meth:`Waits.notify`) or at the next poll.
* a **listener** wait runs ``poll_for_event`` in the shared listener actor.

An event is received exactly once: ``event.received`` (with the event's payload ref) is
durable before ``event_checkpointed`` runs, and the fold refuses a second one. A later
attempt of a wait that has received its event does not wait again: it calls
``event_checkpointed`` again (at least once) and completes with the same event.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import weakref
from typing import Any

import cloudpickle
import ray
from ray.exceptions import RayError

from replay import EventAwaited, EventReceived, Mailbox, PayloadRef, TimerSet, read_mailbox
from storage_backends import StorageError

from ..exceptions import DuplicateEventError
from ..graph._waits import WaitSpec
from ..store import _payloads
from ._http_deploy import deploy_once, report
from ._listeners import decode_result, forget_host, listener_host
from ._worker import Outcome

logger = logging.getLogger(__name__)

OK = "ok"  # (as _run's; a dependency settled with a value)
MAILBOX_POLL_MIN_S = 0.5  # a wait re-reads its mailbox this often at first, without a nudge,
MAILBOX_POLL_MAX_S = 5.0  # backing off to this (a sender on the cluster nudges it at once)
_HOST = socket.gethostname()
_NONE = cloudpickle.dumps(None)


class WaitFailed(Exception):
    """A wait ended as an application failure of its task (a listener raised, a bad argument)."""

    def __init__(self, outcome: Outcome):
        self.outcome = outcome


class Waits:
    """The open waits of one run, each an asyncio task on the run's loop.

    Holds its run weakly: a finished run must be freed without the cyclic collector.
    """

    def __init__(self, run: Any):
        self._run = weakref.ref(run)
        self._tasks: dict[str, asyncio.Task] = {}
        self._nudges: set[asyncio.Event] = set()
        self._mailbox: Mailbox | None = None

    def start(self, source: Any, spec: WaitSpec) -> None:
        """Wait for ``source``'s task (whose attempt the run has scheduled); settles ``source``."""
        old = self._tasks.get(source.task_id)
        if old is not None and not old.done():
            old.cancel()
        task = asyncio.ensure_future(self._wait(source, spec))
        self._tasks[source.task_id] = task
        task.add_done_callback(lambda t, key=source.task_id: self._done(key, t))

    def _done(self, task_id: str, task: asyncio.Task) -> None:
        if self._tasks.get(task_id) is task:
            del self._tasks[task_id]

    def notify(self) -> None:
        """Something was sent to the workflow's mailbox: look now."""
        for nudge in self._nudges:
            nudge.set()

    def cancel_all(self) -> None:
        for task in list(self._tasks.values()):
            task.cancel()
        self._tasks.clear()

    # --- one wait -----------------------------------------------------------------------

    async def _wait(self, source: Any, spec: WaitSpec) -> None:
        try:
            for dep in source.deps:
                await asyncio.shield(dep.settled)
            run = self._run()
            if run is None:
                return
            if any(dep.settled.result() != OK for dep in source.deps):
                run._settle_or_finish(source, None, None)  # deferred: waits again once its input has a value
                return
            del run
            if spec.kind == "timer":
                outcome, value = await self._timer(source, spec)
            elif spec.kind == "mailbox":
                outcome, value = await self._mailbox_wait(source, spec)
            else:
                outcome, value = await self._listener_wait(source, spec)
            source.value_ref = ray.put(value)
        except asyncio.CancelledError:
            if not source.settled.done():  # nobody waits on it any more: the run has stopped
                source.settled.set_result("failed")
            raise
        except WaitFailed as failed:
            self._settle(source, failed.outcome, None)
            return
        except RayError as exc:  # the listener actor died, say: a system failure, retried
            forget_host()
            self._settle(source, None, exc)
            return
        except BaseException as exc:  # storage failed or the log writer broke: the run must stop
            run = self._run()
            if run is not None:
                run._finish_with(exc)
            return
        self._settle(source, outcome, None)

    def _settle(self, source: Any, outcome: Outcome | None, error: BaseException | None) -> None:
        run = self._run()
        if run is not None:
            run._settle_or_finish(source, outcome, error)

    def _run_now(self) -> Any:
        run = self._run()
        if run is None:
            raise asyncio.CancelledError()
        return run

    async def _argument(self, source: Any, spec: WaitSpec) -> Any:
        """The value of the dependency that gives the timestamp or key (``spec.arg_dep``)."""
        return await source.deps[spec.arg_dep].value_ref

    async def _timer(self, source: Any, spec: WaitSpec) -> tuple[Outcome, Any]:
        run = self._run_now()
        task = run.state.tasks[source.task_id]
        started = time.time()
        if task.wait is not None and task.wait.deadline is not None:
            deadline = task.wait.deadline  # set by an earlier attempt: kept, never restarted
        elif spec.duration is not None:
            deadline = started + spec.duration
        elif spec.arg_dep is not None:
            deadline = await self._argument(source, spec)
            if isinstance(deadline, bool) or not isinstance(deadline, (int, float)) or deadline != deadline:
                raise WaitFailed(_failed(started, TypeError(
                    f"TimerListener's timestamp must be Unix seconds (a number), got "
                    f"{type(deadline).__name__} {deadline!r}")))
        else:
            deadline = spec.deadline
        run.writer.add(TimerSet(ts=started, task_id=source.task_id, deadline=float(deadline),
                                attempt=source.attempt))
        del run, task
        while (delay := deadline - time.time()) > 0:  # (the loop's clock may wake it a hair early)
            await asyncio.sleep(delay)
        output = PayloadRef(size=len(_NONE), digest=_payloads.digest(_NONE), type_name="builtins.NoneType",
                            inline=_NONE)
        return _completed(started, output), None

    async def _mailbox_wait(self, source: Any, spec: WaitSpec) -> tuple[Outcome, Any]:
        run = self._run_now()
        task_id = source.task_id
        started = time.time()
        key = spec.event_key if spec.arg_dep is None else await self._argument(source, spec)
        if key is None and spec.arg_dep is None:
            key = task_id  # HTTPListener's default key: the waiting task's id (2.47's rule)
        if not isinstance(key, str):
            raise WaitFailed(_failed(started, TypeError(
                f"HTTPListener's event_key must be a str, got {type(key).__name__} {key!r}")))
        _check_key_free(run, task_id, key, started)
        run.writer.add(EventAwaited(ts=started, task_id=task_id, attempt=source.attempt, event_key=key,
                                    listener=spec.listener))
        _ensure_http_provider(run.spec)
        received = run.state.tasks[task_id].wait.received
        storage, workflow_id = run.storage, run.workflow_id
        del run
        if received is None:
            seq, sent = await self._letter(storage, workflow_id, key)
            run = self._run_now()
            _check_key_free(run, task_id, key, started)  # another wait on the key may have taken it
            await run.writer.write(EventReceived(ts=time.time(), task_id=task_id, payload=sent.payload,
                                                 attempt=source.attempt, event_key=key, mailbox_seq=seq))
            del run
            received = sent.payload
        payload = _payloads.Pickled(await _payloads.load_bytes(storage, workflow_id, received))
        value = (key, payload)  # HTTPListener's event, as 2.47 returned it
        if spec.commit:
            await self._commit(source, cloudpickle.dumps(value), started)
        data = cloudpickle.dumps(value)
        name = None
        if len(data) > _payloads.INLINE_LIMIT:
            name = _payloads.blob_name("out", task_id, source.attempt)
            await storage.put_blob(workflow_id, name, data)
        return _completed(started, _payloads.make_ref(data, value, name)), value

    async def _letter(self, storage: Any, workflow_id: str, key: str) -> tuple[int, Any]:
        """The mailbox's (seq, event) for ``key``, once it is there."""
        nudge = asyncio.Event()
        self._nudges.add(nudge)
        interval = MAILBOX_POLL_MIN_S
        try:
            while True:
                nudge.clear()
                try:
                    self._mailbox = await read_mailbox(storage, workflow_id, self._mailbox)
                except StorageError as exc:  # keep waiting; storage may come back
                    logger.warning("reading the mailbox of workflow %s failed (%s); trying again",
                                   workflow_id, exc)
                found = self._mailbox.events.get(key) if self._mailbox is not None else None
                if found is not None:
                    return found
                try:
                    await asyncio.wait_for(nudge.wait(), timeout=interval)
                    interval = MAILBOX_POLL_MIN_S
                except asyncio.TimeoutError:
                    interval = min(interval * 2, MAILBOX_POLL_MAX_S)
        finally:
            self._nudges.discard(nudge)

    async def _listener_wait(self, source: Any, spec: WaitSpec) -> tuple[Outcome, Any]:
        run = self._run_now()
        task_id, attempt = source.task_id, source.attempt
        started = time.time()
        run.writer.add(EventAwaited(ts=started, task_id=task_id, attempt=attempt, listener=spec.listener))
        call = run.tasks[task_id]
        received = run.state.tasks[task_id].wait.received
        storage, workflow_id = run.storage, run.workflow_id
        del run
        if received is None:
            by_value = call.passed_by_value()
            args = [source.deps[i].value_ref for i in by_value]
            if call.ref_deps:
                args.append([source.deps[i].value_ref for i in call.ref_deps])
            result = decode_result(await _cancellable(
                listener_host().poll.remote(call.call, by_value, call.ref_deps, *args)))
            if not result.ok:
                raise WaitFailed(_listener_failed(started, result))
            data = result.data
            received = PayloadRef(size=len(data), digest=_payloads.digest(data), type_name=result.type_name)
            if len(data) <= _payloads.INLINE_LIMIT:
                received.inline = data
            else:
                received.blob = _payloads.blob_name("event", task_id, attempt)
                await storage.put_blob(workflow_id, received.blob, data)
            run = self._run_now()
            await run.writer.write(EventReceived(ts=time.time(), task_id=task_id, payload=received,
                                                 attempt=attempt))
            del run
        else:  # received by an earlier attempt: the same event, not a new one
            data = await _payloads.load_bytes(storage, workflow_id, received)
        if spec.commit:
            await self._commit(source, data, started)
        return _completed(started, received), _payloads.Pickled(data)

    async def _commit(self, source: Any, event: bytes, started: float) -> None:
        """``event_checkpointed(event)`` in the listener actor (the event is durable by now)."""
        call = self._run_now().tasks[source.task_id].call
        result = decode_result(await _cancellable(listener_host().checkpointed.remote(call, event)))
        if not result.ok:
            raise WaitFailed(_listener_failed(started, result))


def _check_key_free(run: Any, task_id: str, key: str, started: float) -> None:
    """A mailbox key is delivered to one task: fail this wait if another task received it."""
    holder = run.state.event_keys.get(key)
    if holder is not None and holder != task_id:
        raise WaitFailed(_failed(started, DuplicateEventError(run.workflow_id, key, (
            f"task {holder!r} of the workflow already received the event with this key; "
            "each key is delivered once, so wait on another key"))))


async def _cancellable(ref: Any) -> Any:
    """Await an actor call; if this wait is cancelled, cancel the call too (its coroutine stops)."""
    try:
        return await ref
    except asyncio.CancelledError:
        try:
            ray.cancel(ref)
        except Exception:
            pass
        raise


def _completed(started: float, output: PayloadRef) -> Outcome:
    return Outcome("completed", started, time.time(), os.getpid(), _HOST, output=output)


def _failed(started: float, exc: BaseException) -> Outcome:
    data = cloudpickle.dumps(exc)
    error = PayloadRef(size=len(data), digest=_payloads.digest(data), type_name=_payloads.type_name(exc),
                       inline=data)
    return Outcome("failed", started, time.time(), os.getpid(), _HOST,
                   error_type=f"{type(exc).__module__}.{type(exc).__qualname__}", message=str(exc), error=error)


def _listener_failed(started: float, result: Any) -> Outcome:
    error = None
    if result.data and len(result.data) <= _payloads.INLINE_LIMIT:
        error = PayloadRef(size=len(result.data), digest=_payloads.digest(result.data),
                           type_name=result.error_type, inline=result.data)
    return Outcome("failed", started, time.time(), os.getpid(), _HOST, error_type=result.error_type,
                   message=result.message, traceback=result.traceback, error=error,
                   retryable=result.retryable)


def _ensure_http_provider(spec) -> None:
    """Deploy the HTTP event provider when this actor's first mailbox wait begins (in the background)."""
    ref = deploy_once(spec)
    if ref is not None:
        asyncio.ensure_future(_await_deploy(ref))


async def _await_deploy(ref: Any) -> None:
    try:
        await ref
    except Exception as exc:
        report(exc)
