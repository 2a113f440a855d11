"""Running storage coroutines from synchronous code (the driver, Ray workers).

Each process gets one background event loop thread; storage objects are opened
on it and cached per :class:`~._spec.StorageSpec`, so an aiobotocore client or a
file cache lives as long as the process and is never shared across loops.
"""

from __future__ import annotations

import asyncio
import atexit
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from storage_backends import Storage

from ._spec import StorageSpec

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_storages: dict[StorageSpec, Storage] = {}


def _background_loop() -> asyncio.AbstractEventLoop:
    global _loop
    with _lock:
        if _loop is None or _loop.is_closed():
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="ray-durable-io", daemon=True)
            thread.start()
            _loop = loop
        return _loop


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on this process's storage loop and wait for its result."""
    loop = _background_loop()
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        raise RuntimeError("run_sync called from the storage loop itself")
    return asyncio.run_coroutine_threadsafe(coro, loop).result()


def close_all() -> None:
    """Close every cached storage (at exit), so no connection pool is left open."""
    with _lock:
        storages = list(_storages.values())
        _storages.clear()
        loop = _loop
    if loop is None or loop.is_closed():
        return
    for storage in storages:
        try:
            asyncio.run_coroutine_threadsafe(storage.close(), loop).result(timeout=5)
        except Exception:
            pass


atexit.register(close_all)


def storage_for(spec: StorageSpec | str, options: dict[str, Any] | None = None) -> Storage:
    """The process-wide Storage of ``spec`` (or of a URL and options), opened once, used on the
    background loop."""
    if isinstance(spec, str):
        spec = StorageSpec.from_url(spec, options)
    with _lock:
        storage = _storages.get(spec)
        if storage is None:
            storage = _storages[spec] = spec.open()
        return storage
