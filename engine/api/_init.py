"""Process-wide engine configuration: which storage, which Ray cluster, which manager."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import ray

from storage_backends import Storage, default_storage_url, open_storage

from ..store._sync import run_sync, storage_for
from ._manager_client import start_manager


@dataclass
class EngineContext:
    storage_url: str
    storage_options: dict[str, Any]
    storage: Storage
    manager: Any  # ActorHandle


_lock = threading.Lock()
_context: EngineContext | None = None


def init(storage: str | None = None, *, storage_options: dict[str, Any] | None = None,
         max_running_workflows: int | None = None, max_pending_workflows: int | None = None,
         **ray_init_kwargs: Any) -> None:
    """Choose the storage and connect to (or start) Ray, as ``ray.workflow.init`` did.

    Args:
        storage: a path, ``file://PATH`` or ``s3://BUCKET/PREFIX``; unset means
            ``$RAY_DURABLE_STORAGE``, else ``/tmp/ray/workflow_data``.
        storage_options: backend options, e.g. ``{"endpoint_url": ...}`` for S3.
        max_running_workflows: how many workflows run at once (-1 or None: no limit); more
            are PENDING, and start in submission order.
        max_pending_workflows: how many may be PENDING (-1 or None: no limit); beyond
            that, run raises WorkflowQueueFullError.
        **ray_init_kwargs: passed to ``ray.init`` when Ray is not running yet.

    Raises:
        TypeError: a limit that is not an int. ValueError: a limit out of range, or one that
            differs from what the storage's manager on this cluster already runs with (as
            2.47's re-init raised; None keeps the manager's); an unknown storage scheme.
    """
    global _context
    limits = _limits(max_running_workflows, max_pending_workflows)
    url = default_storage_url() if storage is None else storage  # "" is an error, not the default
    options = dict(storage_options or {})
    store = open_storage(url, **options)  # unknown scheme / bad path fail here, before Ray starts
    if not ray.is_initialized():
        ray_init_kwargs.setdefault("include_dashboard", False)
        ray.init(**ray_init_kwargs)
    run_sync(store.check())  # fail fast: a root that is a file, read-only storage, missing bucket
    manager = start_manager(url, options, limits)
    if limits:
        _check_same_limits(url, limits, ray.get(manager.limits.remote()))
    with _lock:
        _context = EngineContext(url, options, storage_for(url, options), manager)


def _limits(max_running: Any, max_pending: Any) -> dict[str, int | None]:
    """The queueing limits given, checked as 2.47 checked them; -1 (no limit) becomes None."""
    limits: dict[str, int | None] = {}
    for name, value, minimum in (("max_running_workflows", max_running, 1),
                                 ("max_pending_workflows", max_pending, 0)):
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{name} must be None or an int, got {type(value).__name__} {value!r}")
        if value != -1 and value < minimum:
            raise ValueError(f"{name} must be -1 (no limit) or an int >= {minimum}, got {value}")
        limits[name] = None if value == -1 else value
    return limits


def _check_same_limits(url: str, asked: dict[str, int | None], current: dict[str, int | None]) -> None:
    """A re-init may not change the limits the storage's manager runs with (2.47 refused too)."""
    if all(current[name] == value for name, value in asked.items()):
        return

    def show(values: dict[str, int | None]) -> str:
        return ", ".join(f"{k}={-1 if v is None else v}" for k, v in values.items())

    raise ValueError(
        f"workflow.init was called with {show(asked)}, but this cluster's manager for storage {url} "
        f"runs with {show(current)}; pass the same limits (or None to keep them), or use another storage")


def context() -> EngineContext:
    """The current context, initializing with defaults (as ray.workflow did) if needed."""
    if _context is None or not ray.is_initialized():
        init(None if _context is None else _context.storage_url,
             storage_options=None if _context is None else _context.storage_options)
    return _context
