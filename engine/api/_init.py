"""Process-wide engine configuration: which storage, which Ray cluster, which manager."""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from typing import Any

import ray

from storage_backends import STORAGE_ENV_VAR, Storage

from .._names import MANAGER_PREFIX, NAMESPACE, manager_name
from ..exceptions import WorkflowError
from ..runtime._manager import WorkflowManager
from ..store import _index
from ..store._spec import StorageSpec
from ..store._sync import run_sync, storage_for

logger = logging.getLogger(__name__)


@dataclass
class EngineContext:
    spec: StorageSpec
    storage: Storage
    manager: Any  # ActorHandle
    manager_name: str
    max_running_workflows: int | None = None
    max_pending_workflows: int | None = None

    @property
    def storage_url(self) -> str:
        return self.spec.url


_lock = threading.Lock()
_context: EngineContext | None = None


def init(storage: str | Storage | None = None, *, storage_options: dict[str, Any] | None = None,
         max_running_workflows: int | None = None, max_pending_workflows: int | None = None,
         **ray_init_kwargs: Any) -> None:
    """Choose the storage and connect to (or start) Ray, as ``ray.workflow.init`` did.

    Args:
        storage: a path, ``file://PATH``, ``s3://BUCKET/PREFIX[?region=...&endpoint_override=...]``,
            a URL of a scheme registered with ``storage_backends.register_scheme``, or a
            ``storage_backends.Storage`` instance (picklable; see ``engine.store._spec``).
            Unset: the storage this process already uses, if ``init`` ran before; else
            ``$RAY_DURABLE_STORAGE`` if set; else the storage the manager already running on
            this Ray cluster serves (ray.workflow's storage was cluster-wide), said in an INFO
            log line; else ``/tmp/ray/workflow_data``.
        storage_options: backend options, e.g. ``{"endpoint_url": ...}`` for S3 (not with an instance).
        max_running_workflows / max_pending_workflows: workflow queueing limits.
        **ray_init_kwargs: passed to ``ray.init`` when Ray is not running yet.

    Raises:
        UnknownSchemeError, StorageURLError: a URL no backend can open (before Ray starts).
        TypeError: a storage instance that cannot travel to other processes.
        WorkflowError: no storage was given and managers of several storages run on this cluster.
    """
    for name, limit in (("max_running_workflows", max_running_workflows),
                        ("max_pending_workflows", max_pending_workflows)):
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
            raise ValueError(f"{name} must be a non-negative int or None, got {limit!r}")
    if max_running_workflows == 0:
        raise ValueError("max_running_workflows must be at least 1 (None: no limit)")
    spec = _chosen_storage(storage, storage_options)  # bad URL or instance: fails before Ray starts
    if not ray.is_initialized():
        ray_init_kwargs.setdefault("include_dashboard", False)
        ray.init(**ray_init_kwargs)
    if spec is None:
        spec = cluster_storage() or StorageSpec.from_url(None)
    _connect(spec, max_running_workflows, max_pending_workflows)


def _chosen_storage(storage: str | Storage | None, options: dict[str, Any] | None) -> StorageSpec | None:
    """The storage this driver asked for; None if it asked for none (then the cluster's is used)."""
    if isinstance(storage, Storage):
        if options:
            raise ValueError("storage_options go with a storage URL; a Storage instance is configured "
                             f"already (got {sorted(options)})")
        return StorageSpec.of(storage)
    if storage is not None and not isinstance(storage, str):
        raise TypeError(f"storage must be a URL (str) or a storage_backends.Storage instance, "
                        f"got {type(storage).__name__}: {storage!r}")
    if storage or options:
        return StorageSpec.from_url(storage or None, options)
    if _context is not None:  # init() again, say for new limits: same storage, as in ray.workflow
        return _context.spec
    if os.environ.get(STORAGE_ENV_VAR):
        return StorageSpec.from_url(None)
    return None


def cluster_storage() -> StorageSpec | None:
    """The storage the ray-durable manager on this cluster serves; None if no manager runs.

    Lists the named actors of the ``ray_durable`` namespace and asks each manager for its
    storage (one round trip, all at once): this runs on the first API call of a driver that
    gave no storage. Managers of another protocol (an older engine) are ignored.

    Raises:
        WorkflowError: managers of several storages run on this cluster: choose one with init(storage).
    """
    names = [actor["name"] for actor in ray.util.list_named_actors(all_namespaces=True)
             if actor["namespace"] == NAMESPACE and actor["name"].startswith(MANAGER_PREFIX)]
    asked = {}
    for name in names:
        try:
            asked[name] = ray.get_actor(name, namespace=NAMESPACE).storage_spec.remote()
        except (ValueError, AttributeError):  # gone meanwhile, or an older manager
            continue
    found: dict[str, StorageSpec] = {}
    for name, ref in asked.items():
        try:
            spec = ray.get(ref, timeout=60)
        except Exception:  # died meanwhile, or too busy to answer: not one to hand work to
            continue
        if isinstance(spec, StorageSpec) and manager_name(spec.key) == name:
            found[name] = spec
    if not found:
        return None
    if len(found) > 1:
        urls = ", ".join(sorted(spec.url for spec in found.values()))
        raise WorkflowError(f"ray-durable managers of {len(found)} storages run on this Ray cluster ({urls}); "
                            "call workflow.init(storage=...) to choose one")
    spec = next(iter(found.values()))
    logger.info("no storage given: using %s, the storage of the ray-durable manager already running on "
                "this Ray cluster (call workflow.init(storage=...) to choose another)", spec.url)
    return spec


def _connect(spec: StorageSpec, max_running_workflows: int | None, max_pending_workflows: int | None) -> None:
    global _context
    store = storage_for(spec)
    run_sync(store.list_logs())  # fail fast: unreadable storage, missing bucket
    run_sync(_index.ensure_current(store))  # a store of ray-durable 0.1: move its index now
    name = manager_name(spec.key)
    manager = WorkflowManager.options(
        name=name, namespace=NAMESPACE, lifetime="detached", get_if_exists=True,
    ).remote(spec, max_running_workflows, max_pending_workflows)
    if max_running_workflows is not None or max_pending_workflows is not None:
        ray.get(manager.configure.remote(max_running_workflows, max_pending_workflows))
    with _lock:
        _context = EngineContext(spec, store, manager, name, max_running_workflows, max_pending_workflows)


def context() -> EngineContext:
    """The current context, initializing with defaults (as ray.workflow did) if needed."""
    if _context is None:
        init()
    elif not ray.is_initialized():
        ray.init(include_dashboard=False)
        _connect(_context.spec, None, None)
    return _context
