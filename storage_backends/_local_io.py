"""The local backend's threads and open files: a small pool of I/O threads running blocking
calls (an fsync) for one storage, and the log files kept open between appends.

Apart from :mod:`storage_backends._local` so that it holds only what a log on disk is; the
costs these two save are described there ("Where the time goes").
"""

from __future__ import annotations

import asyncio
import os
import queue
import threading
from collections import OrderedDict

IO_THREADS = 8  # concurrent appends to *different* logs each need their own fsync
MAX_OPEN_LOGS = 64  # log files kept open between appends, per storage


class IoThreads:
    """A few daemon threads running blocking calls for one storage; started on demand.

    ``run(fn, *args)`` returns an asyncio future of ``fn(*args)``. Cheaper than
    ``loop.run_in_executor`` (no concurrent.futures.Future in between), which
    matters when the call is a 100 us fsync.
    """

    def __init__(self, max_threads: int = IO_THREADS):
        self._max = max_threads
        self._lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        # One generation of threads and the counters they keep. A shutdown starts a new one;
        # a thread of an old generation only ever touches its own counters, however late it
        # runs (it used to raise the new generation's idle count, so no thread was started).
        self._gen = _Generation(queue.SimpleQueue())
        self._pid = os.getpid()

    def run(self, fn, *args) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        if self._pid != os.getpid():  # forked: the threads stayed in the parent
            self._reset()
        gen = self._gen
        gen.queue.put((loop, future, fn, args))
        if gen.idle == 0 and gen.threads < self._max:
            with self._lock:
                if gen.threads < self._max:
                    gen.threads += 1
                    threading.Thread(target=self._work, args=(gen,), daemon=True,
                                     name="ray-durable-local-io").start()
        return future

    def _work(self, gen: _Generation) -> None:
        lock, work = self._lock, gen.queue
        while True:
            with lock:
                gen.idle += 1
            item = work.get()
            if item is None:  # shut down
                return
            with lock:
                gen.idle -= 1
            loop, future, fn, args = item
            try:
                result, error = fn(*args), None
            except BaseException as exc:  # handed to the awaiting task
                result, error = None, exc
            try:
                loop.call_soon_threadsafe(_resolve, future, result, error)
            except RuntimeError:  # the loop was closed meanwhile: nobody is waiting
                pass
            del item, loop, future, fn, args, result, error

    def shutdown(self) -> None:
        with self._lock:
            gen = self._gen
            self._reset()
        for _ in range(gen.threads):
            gen.queue.put(None)


class _Generation:
    """The queue of one generation of I/O threads, with how many there are and how many wait."""

    __slots__ = ("queue", "threads", "idle")

    def __init__(self, work: queue.SimpleQueue):
        self.queue = work
        self.threads = 0
        self.idle = 0


def release(io: IoThreads, handles: LogHandles) -> None:
    """Finalizer of a storage that was never closed."""
    handles.close_all()
    io.shutdown()


def _resolve(future: asyncio.Future, result, error: BaseException | None) -> None:
    if future.done():  # the awaiting task was cancelled; the call still ran
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)


class LogHandle:
    """A log file kept open for appends, and the lock that gives it to one thread at a time.

    (``flock`` excludes other open file descriptions, i.e. other processes and other
    storages, but not two threads sharing one fd: hence the thread lock.)
    """

    __slots__ = ("lock", "fd", "closed")

    def __init__(self):
        self.lock = threading.Lock()
        self.fd = -1
        self.closed = False  # evicted or deleted: whoever holds it must fetch a new one

    def close(self) -> None:  # with self.lock held
        self.closed = True
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            os.close(fd)  # also drops this fd's flock, if any (it is not held between appends)


class LogHandles:
    """At most ``limit`` open log files, least recently appended to closed first."""

    def __init__(self, limit: int = MAX_OPEN_LOGS):
        self.limit = limit
        self._lock = threading.Lock()
        self._handles: OrderedDict[str, LogHandle] = OrderedDict()
        self._pid = os.getpid()

    def get(self, log_id: str) -> LogHandle:
        with self._lock:
            if self._pid != os.getpid():  # forked: start afresh (closing our copies of the
                for inherited in self._handles.values():  # fds leaves the parent's flocks alone)
                    inherited.closed = True
                    if inherited.fd >= 0:
                        os.close(inherited.fd)
                        inherited.fd = -1
                self._handles = OrderedDict()
                self._pid = os.getpid()
            handle = self._handles.get(log_id)
            if handle is None:
                handle = self._handles[log_id] = LogHandle()
                if len(self._handles) > self.limit:
                    self._evict_one(handle)
            else:
                self._handles.move_to_end(log_id)
            return handle

    def _evict_one(self, keep: LogHandle) -> None:
        for log_id, handle in self._handles.items():  # oldest first
            if handle is not keep and handle.lock.acquire(blocking=False):
                try:
                    handle.close()
                finally:
                    handle.lock.release()
                del self._handles[log_id]
                return  # (all busy: over the limit until the next append)

    def discard(self, log_id: str) -> None:
        with self._lock:
            handle = self._handles.pop(log_id, None)
        if handle is not None:
            with handle.lock:
                handle.close()

    def close_all(self) -> None:
        with self._lock:
            handles, self._handles = list(self._handles.values()), OrderedDict()
            forked = self._pid != os.getpid()
        for handle in handles:
            if forked:
                handle.closed = True
                continue
            with handle.lock:
                handle.close()
