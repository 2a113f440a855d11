"""A driver's line to the manager actor: one place that finds a live manager, and one place
that turns Ray's actor-death errors into workflow errors.

When the manager dies (its process killed, its node lost), Ray raises ``RayActorError`` for
every call in flight and for every later call on the same handle. Here:

* a call that waits on a workflow (:func:`result`) raises
  :class:`~engine.exceptions.WorkflowInterruptedError` naming the workflow (its log still says
  RUNNING: it is RESUMABLE), and marks the handle lost; a call that hands a workflow over
  (:func:`drive`) does so too if the manager had taken it on, else goes to a new manager;
* a question or an idempotent order (:func:`ask`: live statuses, cancel) is asked again of a
  new manager;
* :func:`live_manager` replaces a lost handle with a new manager for the same storage, so later
  calls in this process work without a new ``workflow.init()``.

(A manager that restarts itself, and drivers that keep waiting through that, can build on
these two places: :func:`result` would wait for the new manager instead of raising.)
"""

from __future__ import annotations

import threading
import time
from typing import Any

import ray
from ray.exceptions import RayActorError, RayTaskError

from replay import load_state

from .._names import NAMESPACE, manager_name
from ..exceptions import WorkflowError, WorkflowInterruptedError, as_ray_task_error
from ..runtime._manager import WorkflowManager
from ..store._sync import run_sync

ACTOR_LOST = (RayActorError,)  # ActorDiedError and ActorUnavailableError are both of these
REPLACE_BOUND_S = 120.0  # a new manager not answering by then is an error, not a wait

_lock = threading.Lock()
_lost: set[str] = set()  # actor ids of manager handles whose actor is known to be dead
_limits: dict[str, dict[str, int | None]] = {}  # storage URL -> the queueing limits init was given


def start_manager(storage_url: str, storage_options: dict[str, Any],
                  limits: dict[str, int | None] | None = None) -> Any:
    """The manager for ``storage_url`` on this cluster: the running one, or a new one.

    Args:
        limits: the queueing limits ``init`` was given; remembered, so that a manager made to
            replace a dead one runs with them too.
    """
    if limits:
        _limits[storage_url] = {**_limits.get(storage_url, {}), **limits}
    return WorkflowManager.options(
        name=manager_name(storage_url), namespace=NAMESPACE, lifetime="detached", get_if_exists=True,
    ).remote(storage_url, storage_options, limits or _limits.get(storage_url))


def live_manager(ctx) -> Any:
    """``ctx.manager``, replaced first by a new manager if it is known to be dead."""
    handle = ctx.manager
    if _actor_id(handle) in _lost:
        handle = _replace(ctx, handle)
    return handle


def ask(ctx, method: str, *args: Any) -> Any:
    """``ray.get`` of ``manager.method(*args)``, asked again of a new manager if the old one died.

    For calls that are safe to repeat: questions (live statuses) and idempotent orders (cancel).
    """
    handle = live_manager(ctx)
    try:
        return result(getattr(handle, method).remote(*args))
    except ACTOR_LOST:
        _mark_lost(handle)
        return result(getattr(_replace(ctx, handle), method).remote(*args))


def drive(ctx, workflow_id: str, runs_before: int, method: str, *args: Any) -> Any:
    """``manager.method(*args)`` for a call that hands ``workflow_id`` to the manager (start, run).

    If the manager dies, the log says whether it had taken the workflow on (a claim is durable
    before any task runs): if not (it was dead already, or died first), the call goes to a new
    manager; if it had, the workflow is RESUMABLE and WorkflowInterruptedError says so.

    Args:
        runs_before: how many runs the workflow's log held before this call.
    """
    handle = live_manager(ctx)
    try:
        return result(getattr(handle, method).remote(*args), workflow_id, handle)
    except WorkflowInterruptedError:
        if _runs(ctx, workflow_id) > runs_before:
            raise
    return result(getattr(_replace(ctx, handle), method).remote(*args), workflow_id, ctx.manager)


def _runs(ctx, workflow_id: str) -> int:
    return len(run_sync(load_state(ctx.storage, workflow_id)).run_ids)


def result(ref: ray.ObjectRef, workflow_id: str | None = None, handle: Any = None) -> Any:
    """``ray.get(ref)``, raising our workflow errors rather than Ray's wrappers around them: a
    workflow error the manager raised comes out with our message, as an instance of both its
    class and RayTaskError (as 2.47's ``ray.get`` raised it).

    Args:
        workflow_id: the workflow the call drives or waits on; if the manager dies meanwhile,
            a WorkflowInterruptedError names it (without one, Ray's error is raised as it is).
        handle: the manager ``ref`` came from, marked lost if it died.
    """
    try:
        return ray.get(ref)
    except RayTaskError as exc:
        if isinstance(exc.cause, WorkflowError):
            raise as_ray_task_error(exc.cause) from None
        raise
    except ACTOR_LOST as exc:
        if handle is not None:
            _mark_lost(handle)
        if workflow_id is None:
            raise
        raise WorkflowInterruptedError(
            workflow_id, f"the manager actor driving it died ({type(exc).__name__}); the next call "
                         "reaches a new manager") from exc


def _actor_id(handle: Any) -> str:
    return handle._actor_id.hex()


def _mark_lost(handle: Any) -> None:
    with _lock:
        _lost.add(_actor_id(handle))


def _replace(ctx, dead: Any) -> Any:
    """A new, answering manager in place of ``dead`` (once per dead handle, whoever asks first)."""
    with _lock:
        _lost.add(_actor_id(dead))
        if ctx.manager is not dead:  # another thread replaced it already
            return ctx.manager
        deadline = time.monotonic() + REPLACE_BOUND_S
        while True:
            # Until the GCS has released the dead actor's name, get_if_exists hands back the dead one.
            handle = start_manager(ctx.storage_url, ctx.storage_options)
            if _actor_id(handle) not in _lost:
                try:
                    ray.get(handle.live_statuses.remote(), timeout=max(1.0, deadline - time.monotonic()))
                    ctx.manager = handle
                    return handle
                except ACTOR_LOST:
                    _lost.add(_actor_id(handle))
                except ray.exceptions.GetTimeoutError:
                    pass
            if time.monotonic() > deadline:
                raise WorkflowError(
                    f"the manager actor for storage {ctx.storage_url} died, and no new one answered "
                    f"within {REPLACE_BOUND_S:.0f} s: is the Ray cluster still up? (`ray status`)")
            time.sleep(0.2)
