"""Getting task outcomes from Ray onto the driving actor's event loop, cheaply.

Awaiting each task's outcome ref costs an asyncio Task, two futures, a GIL
hand-over from Ray's thread and a wake-up of the event loop, per task: about
a fifth of what a plain Ray task costs. So only the first few refs in flight
are watched that way (Ray calls back, and what arrived meanwhile is handled in
one wake-up), which keeps a chain's latency low; the rest of a wide fan-out are
polled in batches, one ``ray.wait`` (0.1 ms for a thousand refs) and one
``ray.get`` every 2 ms for everything that finished. The poll backs off
to every 50 ms while nothing finishes, so long tasks cost next to nothing.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any

import ray
from ray.exceptions import RayTaskError


class Arrivals:
    """Calls ``handler(key, value, error)`` on the event loop for each watched ref once it is ready.

    ``value`` is the ref's value, or None with ``error`` the exception a
    ``ray.get`` of it would raise. ``handler`` is held weakly (a bound method
    of the run that owns this), so a finished run is freed at once rather
    than at the collector's next full pass; results for a freed run are dropped.
    """

    CALLBACK_LIMIT = 8  # refs watched by callback at once; beyond that, polled
    POLL_INTERVAL_S = 0.002  # while outcomes keep arriving
    MAX_POLL_INTERVAL_S = 0.05  # backed off to, while none do

    def __init__(self, loop: asyncio.AbstractEventLoop,
                 handler: Callable[[Any, Any, BaseException | None], None]):
        self._loop = loop
        self._handler = weakref.WeakMethod(handler)
        self._queue: deque[tuple[Any, Any]] = deque()
        self._lock = threading.Lock()
        self._scheduled = False
        self._by_callback = 0  # refs currently watched by callback
        self._polled: dict[Any, Any] = {}  # ref -> key
        self._poller: asyncio.Task | None = None

    def watch(self, key: Any, ref: Any) -> None:
        """Deliver ``ref``'s result for ``key``. The caller keeps ``ref`` alive until then."""
        on_completed = getattr(ref, "_on_completed", None)
        if on_completed is not None and self._by_callback < self.CALLBACK_LIMIT:
            self._by_callback += 1
            on_completed(lambda result: self._push(key, result))
            return
        self._polled[ref] = key
        if self._poller is None or self._poller.done():
            self._poller = asyncio.ensure_future(self._poll())

    def _push(self, key: Any, result: Any) -> None:  # on a Ray thread
        self._queue.append((key, result))
        with self._lock:
            if self._scheduled:
                return
            self._scheduled = True
        try:
            self._loop.call_soon_threadsafe(self._drain)
        except RuntimeError:  # the loop is closed: the actor is going away
            pass

    def _drain(self) -> None:
        with self._lock:
            self._scheduled = False
        queue, handler = self._queue, self._handler()
        if handler is None:
            queue.clear()
            return
        while queue:
            key, result = queue.popleft()
            self._by_callback -= 1
            if isinstance(result, RayTaskError):  # as ``await ref`` would raise it
                handler(key, None, result.as_instanceof_cause())
            elif isinstance(result, BaseException):
                handler(key, None, result)
            else:
                handler(key, result, None)

    async def _poll(self) -> None:
        polled = self._polled
        interval = self.POLL_INTERVAL_S
        while polled:
            await asyncio.sleep(interval)  # (holding no reference to the handler's run)
            refs = list(polled)
            ready = ray.wait(refs, num_returns=len(refs), timeout=0, fetch_local=False)[0]
            del refs
            if not ready:
                interval = min(interval * 2, self.MAX_POLL_INTERVAL_S)
                continue
            interval = self.POLL_INTERVAL_S
            self._dispatch(_fetch(ready))

    def _dispatch(self, results: list[tuple[Any, Any, BaseException | None]]) -> None:
        polled, handler = self._polled, self._handler()
        if handler is None:  # the run is gone: nobody wants these
            polled.clear()
            return
        for ref, value, error in results:
            handler(polled.pop(ref), value, error)


def _fetch(ready: list) -> list[tuple[Any, Any, BaseException | None]]:
    """(ref, value, error) for refs known to be ready: one ``ray.get``, or one each if any failed.

    A module function on purpose: an error raised in here keeps this frame and its
    callers' (through its traceback, or another exception's ``__context__``), and a
    run keeps its task's error. So no frame on that path may hold the run's handler.
    """
    try:
        return [(ref, value, None) for ref, value in zip(ready, ray.get(ready))]  # does not block
    except Exception:  # one of them failed: take them one by one
        pass
    results = []
    for ref in ready:
        try:
            results.append((ref, ray.get(ref), None))
        except Exception as exc:
            results.append((ref, None, exc.with_traceback(None)))
    return results
