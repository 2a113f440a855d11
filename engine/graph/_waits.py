"""``workflow.sleep`` and ``workflow.wait_for_event``: DAG nodes that wait, holding nothing.

Each returns an ordinary Ray ``FunctionNode`` (as 2.47 did), so it can be bound into other
tasks or run on its own. The node carries a *wait marker* in its workflow options (the same
carrier as ``workflow.options``); :func:`wait_spec` turns it into the task's
:class:`WaitSpec`, and the runtime waits for it on the driving actor, not on a Ray worker:
a timer is a deadline in the log, an HTTP event a mailbox, any other listener a coroutine in
a shared actor. The remote functions below run only when such a node is executed outside a
workflow (``dag.execute()``, or ``workflow.continuation`` called outside a task); then they
wait in a worker, as 2.47's did.
"""

from __future__ import annotations

import asyncio
import datetime
import inspect
import math
import numbers
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import ray
from ray.dag import DAGNode, FunctionNode

from ..event_listener import EventListener, commits, durable_wait_kind
from . import _ray_carrier

SLEEP_TASK_ID = "engine.sleep"
WAIT_TASK_ID = "engine.wait_for_event"


@dataclass(frozen=True)
class WaitSpec:
    """What a wait task waits for (plain data; the driving actor reads it without user code)."""

    kind: str  # "timer" | "mailbox" | "listener"
    duration: float | None = None  # sleep: the deadline is when the wait first begins + this
    deadline: float | None = None  # TimerListener: the timestamp, when given as a value
    event_key: str | None = None  # HTTPListener: the key, when given as a value (None: the task id)
    arg_dep: int | None = None  # the timestamp or key is the value of dependency ``deps[arg_dep]``
    listener: str = ""  # the listener type, module.qualname
    commit: bool = False  # the listener has an event_checkpointed to call


@ray.remote
def _sleep(seconds: float) -> None:
    """``workflow.sleep`` run outside a workflow: an ordinary blocking sleep."""
    time.sleep(seconds)


@ray.remote
def _wait(listener_type: type, *args: Any, **kwargs: Any) -> Any:
    """``workflow.wait_for_event`` run outside a workflow: poll, then commit, in this worker."""
    listener = listener_type()
    event = asyncio.run(listener.poll_for_event(*args, **kwargs))
    asyncio.run(listener.event_checkpointed(event))
    return event


def _marked(node: FunctionNode, task_id: str, marker: dict[str, Any]) -> FunctionNode:
    node._bound_options = _ray_carrier.merged_labels(node._bound_options, {"task_id": task_id, "wait": marker})
    return node


def sleep(duration: float | datetime.timedelta) -> FunctionNode:
    """A DAG node that finishes ``duration`` after it starts; its value is None (as in 2.47).

    The deadline is fixed when the wait first begins and kept in the log: a resume after it
    fires at once, one before it sleeps only for what is left. No Ray worker or CPU is held.

    Args:
        duration: seconds (int or float, >= 0) or a ``datetime.timedelta``.

    Raises:
        TypeError: not a number or timedelta. ValueError: negative, NaN or infinite.
    """
    seconds = duration_seconds(duration, "workflow.sleep duration")
    return _marked(_sleep.bind(seconds), SLEEP_TASK_ID, {"kind": "timer", "duration": seconds})


def duration_seconds(value: Any, what: str) -> float:
    if isinstance(value, datetime.timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{what} must be a number of seconds or a datetime.timedelta, "
                        f"got {type(value).__name__} {value!r}")
    seconds = float(value)
    if math.isnan(seconds) or math.isinf(seconds):
        raise ValueError(f"{what} must be a finite number of seconds, got {value!r}")
    if seconds < 0:
        raise ValueError(f"{what} must be >= 0 seconds, got {value!r}")
    return seconds


def _timestamp(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(value):
        raise TypeError(f"TimerListener's timestamp must be Unix seconds (a number), got "
                        f"{type(value).__name__} {value!r}")
    return float(value)


def wait_for_event(listener_type: type, *args: Any, **kwargs: Any) -> FunctionNode:
    """A DAG node that finishes when ``listener_type().poll_for_event(*args, **kwargs)`` returns;
    its value is that event (ray.workflow 2.47's ``wait_for_event``, same arguments).

    Arguments may be DAG nodes (their values are passed). The event is checkpointed in the
    log before ``event_checkpointed(event)`` is called, and the node finishes after that call.
    ``TimerListener`` becomes a durable timer and ``HTTPListener`` a mailbox wait; other
    listeners poll as coroutines in a shared actor. None holds a Ray worker while it waits.

    Raises:
        TypeError: ``listener_type`` is not an ``EventListener`` subclass, or the arguments do
            not fit its ``poll_for_event`` (checked here, not when the workflow runs).
    """
    if not isinstance(listener_type, type) or not issubclass(listener_type, EventListener):
        shown = listener_type.__name__ if isinstance(listener_type, type) else repr(listener_type)
        raise TypeError(f"event listener type is {shown}, which is not a subclass of "
                        "workflow.EventListener; pass the class (not an instance) of a listener")
    poll = inspect.getattr_static(listener_type, "poll_for_event")
    instance = () if isinstance(poll, (staticmethod, classmethod)) else (None,)  # (None: self)
    try:
        bound = inspect.signature(listener_type.poll_for_event).bind(*instance, *args, **kwargs)
    except TypeError as exc:
        raise TypeError(f"wait_for_event({listener_type.__name__}, ...): the arguments do not fit "
                        f"poll_for_event{inspect.signature(listener_type.poll_for_event)}: {exc}") from None
    kind = durable_wait_kind(listener_type) or "listener"
    marker = {"kind": kind, "listener": f"{listener_type.__module__}.{listener_type.__qualname__}",
              "commit": commits(listener_type)}
    if kind == "timer":
        (value,) = list(bound.arguments.values())[len(instance):]
        if not isinstance(value, DAGNode):
            _timestamp(value)
        return _marked(_wait.bind(listener_type, value), WAIT_TASK_ID, marker)
    if kind == "mailbox":
        key = bound.arguments.get("event_key")
        if key is not None and not isinstance(key, (str, DAGNode)):
            raise TypeError(f"HTTPListener's event_key must be a str (or None: the task's id), got "
                            f"{type(key).__name__} {key!r}")
        return _marked(_wait.bind(listener_type, key), WAIT_TASK_ID, marker)
    return _marked(_wait.bind(listener_type, *args, **kwargs), WAIT_TASK_ID, marker)


def wait_spec(marker: dict[str, Any], args: list[Any], dep_index: Callable[[Any], int | None]) -> WaitSpec:
    """The WaitSpec of a marked node, from its marker and its arguments (placeholders filled in
    by the graph builder; ``dep_index`` says which dependency a placeholder stands for)."""
    kind = marker["kind"]
    common = {"listener": marker.get("listener", ""), "commit": bool(marker.get("commit"))}
    if kind == "timer" and "duration" in marker:
        return WaitSpec("timer", duration=float(marker["duration"]), **common)
    if kind in ("timer", "mailbox"):
        value = args[1]
        dep = dep_index(value)
        if dep is not None:
            return WaitSpec(kind, arg_dep=dep, **common)
        if kind == "timer":
            return WaitSpec(kind, deadline=_timestamp(value), **common)
        return WaitSpec(kind, event_key=value, **common)
    return WaitSpec("listener", **common)
