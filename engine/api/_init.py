"""Process-wide engine configuration: which storage, which Ray cluster, which manager."""

from __future__ import annotations

import os
import threading
import uuid
from dataclasses import dataclass
from typing import Any

import ray

from storage_backends import Storage, default_storage_url, open_storage

from .._names import NAMESPACE, manager_name, seat
from ..runtime._manager import DEFAULT_APPLICATION, ManagerConfig, WorkflowManager
from ..store._leases import DEFAULT_DURATION_S
from ..store._sync import run_sync, storage_for
from ._ray_cluster import start_or_join

APPLICATION_ENV_VAR = "RAY_DURABLE_APPLICATION"


@dataclass
class EngineContext:
    storage_url: str
    storage_options: dict[str, Any]
    storage: Storage
    manager: Any  # ActorHandle
    seat: str  # the manager's seat (engine.store._leases.Lease.seat): this cluster's, this storage's


_lock = threading.Lock()
_context: EngineContext | None = None


def init(storage: str | None = None, *, storage_options: dict[str, Any] | None = None,
         max_running_workflows: int | None = None, max_pending_workflows: int | None = None,
         application: str | None = None, lease_duration: float | None = None, recover: bool = True,
         manager_options: dict[str, Any] | None = None, **ray_init_kwargs: Any) -> None:
    """Choose the storage and connect to (or start) Ray, as ``ray.workflow.init`` did.

    Args:
        storage: a path, ``file://PATH`` or ``s3://BUCKET/PREFIX``; unset means
            ``$RAY_DURABLE_STORAGE``, else ``/tmp/ray/workflow_data``.
        storage_options: backend options, e.g. ``{"endpoint_url": ...}`` for S3.
        max_running_workflows: how many workflows run at once (-1 or None: no limit); more
            are PENDING, and start in submission order.
        max_pending_workflows: how many may be PENDING (-1 or None: no limit); beyond
            that, run raises WorkflowQueueFullError.
        application: the name this cluster runs workflows under (default
            ``$RAY_DURABLE_APPLICATION``, else "default"); recorded with each run. A manager
            that starts takes on the workflows of its application whose lease expired.
        lease_duration: seconds a cluster's lease on the workflows it drives lasts unrenewed
            (default 30); another cluster may take a workflow over only after it expired. It
            is renewed every third of that while the cluster drives anything.
        recover: False: the manager this call creates does not take on expired workflows at
            start (``resume_all`` still does, by hand).
        manager_options: where the manager actor may run, as Ray actor options: ``resources``,
            ``scheduling_strategy``, ``label_selector`` (e.g. to keep it off spot nodes).
            These four settings apply to the manager the first ``init`` against a storage
            creates on a cluster.
        **ray_init_kwargs: passed to ``ray.init`` when Ray is not running yet. Ray is joined
            only where asked (``address=``, ``$RAY_ADDRESS``, ``"auto"``) or where the cluster
            ``ray start`` recorded is alive; otherwise a local Ray starts.

    Raises:
        TypeError: a limit that is not an int. ValueError: a limit out of range, or one that
            differs from what the storage's manager on this cluster already runs with (as
            2.47's re-init raised; None keeps the manager's); an unknown storage scheme.
        RayClusterUnreachableError: (a ``ConnectionError``) the cluster asked for does not
            answer; the message names the address and how to clear a stale record.
    """
    global _context
    limits = _limits(max_running_workflows, max_pending_workflows)
    config = _manager_config(limits, application, lease_duration, recover)
    url = storage or default_storage_url()
    options = dict(storage_options or {})
    store = open_storage(url, **options)  # unknown scheme / bad path fail here, before Ray starts
    start_or_join(ray_init_kwargs)  # a dead address is a clear error here, within seconds
    run_sync(store.list_logs())  # fail fast: unreadable storage, missing bucket
    # Ray restarts the manager wherever it can (its process or node lost) with the same config,
    # so the same lease owner: the new incarnation takes on what the old one drove.
    manager = WorkflowManager.options(
        name=manager_name(url), namespace=NAMESPACE, lifetime="detached", get_if_exists=True,
        max_restarts=-1, **_placement(manager_options),
    ).remote(url, options, config)
    if limits:
        _check_same_limits(url, limits, ray.get(manager.limits.remote()))
    with _lock:
        _context = EngineContext(url, options, storage_for(url, options), manager,
                                 seat(ray.get_runtime_context().gcs_address, url))


def _manager_config(limits: dict[str, int | None], application: str | None, lease_duration: Any,
                    recover: bool) -> ManagerConfig:
    application = application or os.environ.get(APPLICATION_ENV_VAR) or DEFAULT_APPLICATION
    if not isinstance(application, str) or not application.isprintable() or len(application) > 200:
        raise ValueError(f"application must be a printable str of at most 200 characters, got {application!r}")
    if lease_duration is None:
        lease_duration = DEFAULT_DURATION_S
    if isinstance(lease_duration, bool) or not isinstance(lease_duration, (int, float)) or not (
            1.0 <= lease_duration <= 86_400):
        raise ValueError(f"lease_duration must be a number of seconds from 1 to 86400, got {lease_duration!r}")
    if not isinstance(recover, bool):
        raise TypeError(f"recover must be True or False, got {recover!r}")
    return ManagerConfig(owner=f"m-{uuid.uuid4().hex[:16]}", application=application,
                         lease_duration_s=float(lease_duration), recover=recover, limits=limits)


_PLACEMENT_OPTIONS = ("resources", "scheduling_strategy", "label_selector")


def _placement(manager_options: dict[str, Any] | None) -> dict[str, Any]:
    options = dict(manager_options or {})
    unknown = sorted(set(options) - set(_PLACEMENT_OPTIONS))
    if unknown:
        raise ValueError(f"unknown manager option(s) {', '.join(map(repr, unknown))}; "
                         f"valid ones are {', '.join(_PLACEMENT_OPTIONS)}")
    return options


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
