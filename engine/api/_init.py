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
    max_running_workflows: int | None = None
    max_pending_workflows: int | None = None


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
        max_running_workflows / max_pending_workflows: workflow queueing limits.
        **ray_init_kwargs: passed to ``ray.init`` when Ray is not running yet.
    """
    global _context
    for name, limit in (("max_running_workflows", max_running_workflows),
                        ("max_pending_workflows", max_pending_workflows)):
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
            raise ValueError(f"{name} must be a non-negative int or None, got {limit!r}")
    if max_running_workflows == 0:
        raise ValueError("max_running_workflows must be at least 1 (None: no limit)")
    url = default_storage_url() if storage is None else storage  # "" is an error, not the default
    options = dict(storage_options or {})
    store = open_storage(url, **options)  # unknown scheme / bad path fail here, before Ray starts
    if not ray.is_initialized():
        ray_init_kwargs.setdefault("include_dashboard", False)
        ray.init(**ray_init_kwargs)
    run_sync(store.check())  # fail fast: a root that is a file, read-only storage, missing bucket
    manager = start_manager(url, options, max_running_workflows, max_pending_workflows)
    if max_running_workflows is not None or max_pending_workflows is not None:
        ray.get(manager.configure.remote(max_running_workflows, max_pending_workflows))
    with _lock:
        _context = EngineContext(url, options, storage_for(url, options), manager,
                                 max_running_workflows, max_pending_workflows)


def context() -> EngineContext:
    """The current context, initializing with defaults (as ray.workflow did) if needed."""
    if _context is None or not ray.is_initialized():
        init(None if _context is None else _context.storage_url,
             storage_options=None if _context is None else _context.storage_options)
    return _context
