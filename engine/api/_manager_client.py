"""A driver's line to the manager actor: where one is made, how a call survives its death, and how
its errors reach the caller.

The manager heals itself: Ray restarts it (``max_restarts=-1``) with the same lease owner, and
the new incarnation takes on what the old one drove. A call that is safe to repeat is sent with
``max_task_retries=-1`` (:func:`retried`), so Ray sends it again to the restarted manager and
the caller only waits longer. What is left to handle here is a manager gone for good
(``ray.kill(..., no_restart=True)``): the next call replaces it with a new manager in the same
seat, which takes on its predecessor's workflows at once, and

* a question or an idempotent order (:func:`ask`: live statuses, cancel) is asked again of it;
* a call that hands a workflow over (:func:`drive`: start, run) is made again: the new manager
  joins the run it took on, or claims the workflow if nobody had;
* a call that waits on a workflow (:func:`result` with a workflow id) waits again on it.

With ``init(shards=N)`` there are N managers per storage on the cluster, and each call goes to
the shard of its workflow (``EngineContext.shard_for``); listings ask every shard (:func:`ask_all`).

Workflow errors the manager raised come out with our message, as instances of both their
class and ``RayTaskError`` (as 2.47's ``ray.get`` raised them).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import ray
from ray.exceptions import RayActorError, RayTaskError

from .._names import NAMESPACE, manager_name
from ..exceptions import WorkflowError, as_ray_task_error
from ..runtime._manager import ManagerConfig, WorkflowManager
from ..store._spec import StorageSpec

ACTOR_LOST = (RayActorError,)  # ActorDiedError and ActorUnavailableError are both of these
REPLACE_BOUND_S = 120.0  # a new manager not answering by then is an error, not a wait

_lock = threading.Lock()
_lost: set[str] = set()  # actor ids of manager handles whose actor is known to be gone for good


def start_manager(spec: StorageSpec, config: ManagerConfig, placement: dict[str, Any]) -> Any:
    """The manager for ``spec`` (its shard ``config.shard``) on this cluster: the running one, or
    a new one with ``config``.

    Ray restarts it wherever it can (its process or node lost) with the same config, so the same
    lease owner: the new incarnation takes on what the old one drove.
    """
    return WorkflowManager.options(
        name=manager_name(spec.key, config.shard), namespace=NAMESPACE, lifetime="detached", get_if_exists=True,
        max_restarts=-1, **placement,
    ).remote(spec, config)


def retried(method: Any) -> Any:
    """``method`` (of a manager handle) sent again to the restarted manager if it dies meanwhile."""
    return method.options(max_task_retries=-1)


def live_manager(ctx, shard: int = 0) -> Any:
    """The manager of ``shard`` (see ``EngineContext.shard_for``), replaced first by a new one
    if it is known to be gone for good."""
    handle = ctx.managers[shard]
    if _actor_id(handle) in _lost:
        handle = _replace(ctx, shard, handle)
    return handle


def ask(ctx, method: str, workflow_id: str, *args: Any) -> Any:
    """``manager.method(workflow_id, *args)`` of the workflow's shard, for a question or an
    idempotent order, asked of a new manager if the old one is gone."""
    return _call(ctx, ctx.shard_for(workflow_id), method, workflow_id, *args)


def ask_all(ctx, method: str) -> list[Any]:
    """``manager.method()`` of every shard (sent to all at once), in shard order."""
    refs = [retried(getattr(live_manager(ctx, shard), method)).remote() for shard in range(len(ctx.managers))]
    answers = []
    for shard, ref in enumerate(refs):
        try:
            answers.append(result(ref))
        except ACTOR_LOST:
            answers.append(_call(ctx, shard, method))
    return answers


def drive(ctx, method: str, workflow_id: str, *args: Any) -> Any:
    """``manager.method(workflow_id, *args)`` of the workflow's shard, for a call that hands a
    workflow over (start, run): made again of a new manager if the old one is gone (it joins
    the run it took on, or claims it)."""
    return _call(ctx, ctx.shard_for(workflow_id), method, workflow_id, *args)


def _call(ctx, shard: int, method: str, *args: Any) -> Any:
    handle = live_manager(ctx, shard)
    try:
        return result(retried(getattr(handle, method)).remote(*args))
    except ACTOR_LOST:
        _mark_lost(handle)
    return result(retried(getattr(_replace(ctx, shard, handle), method)).remote(*args))


def result(ref: ray.ObjectRef, workflow_id: str | None = None, ctx: Any = None,
           task_id: str | None = None) -> Any:
    """``ray.get(ref)``, raising our workflow errors rather than Ray's wrappers around them.

    Args:
        workflow_id, ctx, task_id: when ``ref`` waits on this workflow's (or task's) output: if
            its manager is gone for good, wait on a new one (which takes the workflow on).
    """
    try:
        return ray.get(ref)
    except RayTaskError as exc:
        if isinstance(exc.cause, WorkflowError):
            raise as_ray_task_error(exc.cause) from None
        raise
    except ACTOR_LOST:
        if workflow_id is None or ctx is None:
            raise
    shard = ctx.shard_for(workflow_id)
    dead = ctx.managers[shard]
    _mark_lost(dead)
    return result(retried(_replace(ctx, shard, dead).wait_output).remote(workflow_id, task_id))


def _actor_id(handle: Any) -> str:
    return handle._actor_id.hex()


def _mark_lost(handle: Any) -> None:
    with _lock:
        _lost.add(_actor_id(handle))


def _replace(ctx, shard: int, dead: Any) -> Any:
    """A new, answering manager for ``shard`` in place of ``dead`` (once per dead handle,
    whoever asks first).

    Raises:
        WorkflowError: no new manager answered within REPLACE_BOUND_S.
    """
    with _lock:
        _lost.add(_actor_id(dead))
        if ctx.managers[shard] is not dead:  # another thread replaced it already
            return ctx.managers[shard]
        deadline = time.monotonic() + REPLACE_BOUND_S
        while True:
            # Until the GCS has released the dead actor's name, get_if_exists hands back the dead one.
            handle = start_manager(ctx.spec, ctx.config.for_shard(shard), ctx.placement)
            if _actor_id(handle) not in _lost:
                try:
                    ray.get(handle.live_statuses.remote(), timeout=max(1.0, deadline - time.monotonic()))
                    ctx.managers[shard] = handle
                    return handle
                except ACTOR_LOST:
                    _lost.add(_actor_id(handle))
                except ray.exceptions.GetTimeoutError:
                    pass
            if time.monotonic() > deadline:
                raise WorkflowError(
                    f"the manager actor for storage {ctx.storage_url} is gone, and no new one answered "
                    f"within {REPLACE_BOUND_S:.0f} s: is the Ray cluster still up? (`ray status`)")
            time.sleep(0.2)
