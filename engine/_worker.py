"""What runs on a Ray worker for one task attempt.

``run_task`` fills the task's arguments with its dependencies' values, tells the
workflow's driving actor that it started, calls the user's function, and
checkpoints the output itself (inline in the result, or as a blob it writes),
so large outputs never travel through the driving actor. It returns two
objects: the value (for dependent tasks) and an :class:`Outcome` (for the actor).
"""

from __future__ import annotations

import os
import threading
import socket
import time
import traceback
from dataclasses import dataclass
from typing import Any

import cloudpickle
import ray
from ray.dag import DAGNode

from replay import PayloadRef

from . import _payloads
from ._graph import Dep, build_graph, continuation_suffix
from ._sync import run_sync, storage_for


class Unavailable:
    """The value slot of a task that did not produce a value (it continued or failed)."""

    def __init__(self, task_id: str, why: str):
        self.task_id = task_id
        self.why = why

    def __repr__(self) -> str:
        return f"<output of task {self.task_id!r} unavailable: {self.why}>"


class DependencyUnavailable(RuntimeError):
    """A dependency did not produce a value; the actor re-runs this task once it has one."""


@dataclass
class TaskCall:
    """Everything a worker needs to run one attempt of one task."""

    workflow_id: str
    task_id: str
    attempt: int
    run_id: str
    storage_url: str
    storage_options: dict[str, Any]
    fn_key: str
    fn_bytes: bytes
    call: bytes
    catch_exceptions: bool
    checkpoint: bool
    manager: Any  # ActorHandle of the workflow manager, for the started notification


@dataclass
class Outcome:
    """What happened to one task attempt, for the driving actor to record."""

    kind: str  # "completed" | "continued" | "failed"
    started_at: float
    ended_at: float
    pid: int
    node: str
    output: PayloadRef | None = None
    graph: bytes | None = None  # continuation: the sub-graph
    error_type: str = ""
    message: str = ""
    traceback: str = ""
    error: PayloadRef | None = None
    retryable: bool = False  # an application error that retry_exceptions covers


_functions: dict[str, Any] = {}
_executing = threading.local()


def in_workflow_task() -> bool:
    """True while this thread runs a workflow task's function (continuation() asks)."""
    return getattr(_executing, "task_id", None) is not None


def _function(call: TaskCall) -> Any:
    func = _functions.get(call.fn_key)
    if func is None:
        func = _functions[call.fn_key] = cloudpickle.loads(call.fn_bytes)
    return func


def _fill(value: Any, deps: tuple[Any, ...]) -> Any:
    if isinstance(value, Dep):
        return deps[value.index]
    if isinstance(value, list):
        return [_fill(v, deps) for v in value]
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return tuple(_fill(v, deps) for v in value)
    if isinstance(value, dict):
        return {k: _fill(v, deps) for k, v in value.items()}
    return value


def _checkpoint(call: TaskCall, value: Any, kind: str) -> PayloadRef:
    data = _payloads.dumps(value, f"the output of task {call.task_id!r}")
    if len(data) <= _payloads.INLINE_LIMIT:
        return _payloads.make_ref(data, value, None)
    name = _payloads.blob_name(kind, call.task_id, call.attempt)
    storage = storage_for(call.storage_url, call.storage_options)
    run_sync(storage.put_blob(call.workflow_id, name, data))
    return _payloads.make_ref(data, value, name)


def _failure(call: TaskCall, exc: BaseException, started: float, retryable: bool) -> Outcome:
    try:
        error_ref = _checkpoint(call, exc, "err")
    except Exception:
        error_ref = None
    return Outcome(
        "failed", started, time.time(), os.getpid(), socket.gethostname(),
        error_type=f"{type(exc).__module__}.{type(exc).__qualname__}",
        message=str(exc), traceback="".join(traceback.format_exception(exc)),
        error=error_ref, retryable=retryable,
    )


def run_task(call: TaskCall, *deps: Any) -> tuple[Any, Outcome]:
    """Run one attempt of a task (the body of the Ray task the engine submits)."""
    for dep in deps:
        if isinstance(dep, Unavailable):
            raise DependencyUnavailable(repr(dep))
    started = time.time()
    if call.manager is not None:
        call.manager.task_started.remote(call.workflow_id, call.run_id, call.task_id, call.attempt,
                                         started, os.getpid(), socket.gethostname())
    args, kwargs, retry_types = cloudpickle.loads(call.call)
    args = _fill(args, deps)
    kwargs = _fill(kwargs, deps)
    _executing.task_id = call.task_id
    try:
        value = _function(call)(*args, **kwargs)
    except Exception as exc:
        if call.catch_exceptions:
            value = (None, exc)
        else:
            retryable = retry_types is not None and isinstance(exc, retry_types)
            return Unavailable(call.task_id, "failed"), _failure(call, exc, started, retryable)
    else:
        if call.catch_exceptions:
            value = (value, None)
    finally:
        _executing.task_id = None
    if isinstance(value, DAGNode):
        return _continue(call, value, started)
    try:
        output = _checkpoint(call, value, "out") if call.checkpoint else _unsaved(value)
    except _payloads.PayloadSerializationError as exc:
        return Unavailable(call.task_id, "failed"), _failure(call, exc, started, False)
    return value, Outcome("completed", started, time.time(), os.getpid(), socket.gethostname(), output=output)


def _unsaved(value: Any) -> PayloadRef:
    return PayloadRef(size=0, digest="", type_name=_payloads.type_name(value), codec="none")


def _continue(call: TaskCall, node: DAGNode, started: float) -> tuple[Any, Outcome]:
    """The task returned a DAG: build and checkpoint it; it runs in the task's place."""
    try:
        graph = build_graph(node, id_suffix=continuation_suffix(call.task_id))
        data = graph.to_bytes()
        ref = _checkpoint_bytes(call, data)
    except Exception as exc:
        return Unavailable(call.task_id, "failed"), _failure(call, exc, started, False)
    outcome = Outcome("continued", started, time.time(), os.getpid(), socket.gethostname(),
                      output=ref, graph=data)
    return Unavailable(call.task_id, "continued"), outcome


def _checkpoint_bytes(call: TaskCall, data: bytes) -> PayloadRef:
    ref = PayloadRef(size=len(data), digest=_payloads.digest(data), type_name="engine.WorkflowGraph")
    if len(data) <= _payloads.INLINE_LIMIT:
        ref.inline = data
    else:
        ref.blob = _payloads.blob_name("dag", call.task_id, call.attempt)
        run_sync(storage_for(call.storage_url, call.storage_options).put_blob(call.workflow_id, ref.blob, data))
    return ref


remote_run_task = ray.remote(max_retries=0)(run_task)


def run_plain(fn_bytes: bytes, call: bytes, *deps: Any) -> Any:
    """A task of a DAG run without durability (continuation() called outside a workflow)."""
    func = cloudpickle.loads(fn_bytes)
    args, kwargs, _ = cloudpickle.loads(call)
    return func(*_fill(args, deps), **_fill(kwargs, deps))


remote_run_plain = ray.remote(run_plain)
