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
    manager_name: str  # named actor (in NAMESPACE) to tell when a long attempt has started


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
    _reporter.begin(call, started)
    try:
        return _run_attempt(call, deps, started)
    finally:
        _reporter.end()


def _run_attempt(call: TaskCall, deps: tuple[Any, ...], started: float) -> tuple[Any, Outcome]:
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


class _StartReporter:
    """Tells the driving actor that a task started, but only once it has run for a while.

    A live TaskStarted event matters for long tasks (status, timelines, crash
    forensics); for short ones the outcome carries the real start time and the
    event is written with the completion. Skipping an actor call per trivial
    task is what keeps the engine's overhead close to plain Ray's.
    """

    DELAY_S = 0.25

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._current: tuple[TaskCall, float] | None = None
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._handles: dict[str, Any] = {}

    def begin(self, call: TaskCall, started: float) -> None:
        with self._lock:
            self._current = (call, started)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="ray-durable-started", daemon=True)
                self._thread.start()
        self._wake.set()

    def end(self) -> None:
        with self._lock:
            self._current = None

    def _loop(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            with self._lock:
                current = self._current
            if current is None:
                continue
            call, started = current
            time.sleep(max(0.0, started + self.DELAY_S - time.time()))
            with self._lock:
                still_running = self._current is current
            if still_running:
                self._notify(call, started)

    def _notify(self, call: TaskCall, started: float) -> None:
        try:
            handle = self._handles.get(call.manager_name)
            if handle is None:
                from ._manager import NAMESPACE

                handle = self._handles[call.manager_name] = ray.get_actor(call.manager_name, namespace=NAMESPACE)
            handle.task_started.remote(call.workflow_id, call.run_id, call.task_id, call.attempt,
                                       started, os.getpid(), socket.gethostname())
        except Exception:
            pass  # informational only; the outcome still records the start


_reporter = _StartReporter()

remote_run_task = ray.remote(max_retries=0)(run_task)


def run_plain(fn_bytes: bytes, call: bytes, *deps: Any) -> Any:
    """A task of a DAG run without durability (continuation() called outside a workflow)."""
    func = cloudpickle.loads(fn_bytes)
    args, kwargs, _ = cloudpickle.loads(call)
    return func(*_fill(args, deps), **_fill(kwargs, deps))


remote_run_plain = ray.remote(run_plain)
