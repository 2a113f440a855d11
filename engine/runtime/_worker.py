"""What runs on a Ray worker for one task attempt.

``run_task`` fills the task's arguments with its dependencies' values, tells the
workflow's driving actor that it started, calls the user's function, and
checkpoints the output itself (inline in the result, or as a blob it writes),
so large outputs never travel through the driving actor. It returns two
objects: the value (for dependent tasks) and an :class:`Outcome` as msgpack
bytes (for the actor).
"""

from __future__ import annotations

import os
import pickle
import threading
import socket
import time
import traceback
from dataclasses import dataclass
from typing import Any

import cloudpickle
import msgspec
import ray
from ray.dag import DAGNode

from replay import PayloadRef

from .._names import NAMESPACE
from ..graph import _pickle
from ..graph._build import Dep, DepRef, PutRef, build_graph
from ..graph._options import TaskOptions
from ..store import _payloads
from ..store._sync import run_sync, storage_for


class Unavailable:
    """The value slot of a task that did not produce a value (it continued or failed)."""

    def __init__(self, task_id: str, why: str):
        self.task_id = task_id
        self.why = why

    def __repr__(self) -> str:
        return f"<output of task {self.task_id!r} unavailable: {self.why}>"


class DependencyUnavailable(RuntimeError):
    """A dependency did not produce a value; the actor re-runs this task once it has one."""


@dataclass(frozen=True)
class RunContext:
    """What every task of one run shares; pickled once per run, not once per task."""

    workflow_id: str
    run_id: str
    storage_url: str
    storage_options: dict[str, Any]
    manager_name: str  # named actor (in NAMESPACE) to tell when a long attempt has started

    def to_bytes(self) -> bytes:
        # Plain pickle (every field is a plain value; storage options are strings and
        # numbers): a few microseconds, where cloudpickle's Python pickler takes ~50.
        return pickle.dumps(self, protocol=5)


class TaskCall(msgspec.Struct, frozen=True, array_like=True):
    """Everything a worker needs to run one attempt of one task.

    Crosses to the worker as msgpack bytes (:meth:`to_bytes`): Ray passes a
    bytes argument without pickling it, which is most of what a trivial task
    costs beyond plain Ray. The run's shared part stays pickled in ``context``
    and is unpickled once per run per worker.
    """

    context: bytes  # RunContext.to_bytes()
    task_id: str
    attempt: int
    fn_key: str
    fn_bytes: bytes
    call: bytes
    catch_exceptions: bool
    checkpoint: bool
    value_deps: tuple[int, ...] = ()  # indexes of the dependencies passed (in order) as values
    ref_deps: tuple[int, ...] = ()  # indexes of those passed as ObjectRefs (one list, last)

    @property
    def run(self) -> RunContext:
        run = _contexts.get(self.context)
        if run is None:
            if len(_contexts) >= 64:
                _contexts.clear()
            run = _contexts[self.context] = pickle.loads(self.context)
        return run

    def to_bytes(self) -> bytes:
        return _encode(self)


class Outcome(msgspec.Struct, array_like=True):
    """What happened to one task attempt, for the driving actor to record (returned as bytes)."""

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

    def to_bytes(self) -> bytes:
        return _encode(self)


_encode = msgspec.msgpack.Encoder().encode
_decode_call = msgspec.msgpack.Decoder(TaskCall).decode
decode_outcome = msgspec.msgpack.Decoder(Outcome).decode
_contexts: dict[bytes, RunContext] = {}
_HOST = socket.gethostname()


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


def _fill(value: Any, values: dict[int, Any], refs: dict[int, Any]) -> Any:
    """Put dependency values, ObjectRefs and re-put user ObjectRefs in place of their placeholders."""
    if isinstance(value, Dep):
        return refs[value.index] if isinstance(value, DepRef) else values[value.index]
    if isinstance(value, PutRef):
        return ray.put(value.value)
    if isinstance(value, list):
        return [_fill(v, values, refs) for v in value]
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return tuple(_fill(v, values, refs) for v in value)
    if isinstance(value, dict):
        return {k: _fill(v, values, refs) for k, v in value.items()}
    return value


def _checkpoint(call: TaskCall, value: Any, kind: str) -> PayloadRef:
    data = _payloads.dumps(value, f"the output of task {call.task_id!r}")
    if len(data) <= _payloads.INLINE_LIMIT:
        return _payloads.make_ref(data, value, None)
    name = _payloads.blob_name(kind, call.task_id, call.attempt)
    run = call.run
    run_sync(storage_for(run.storage_url, run.storage_options).put_blob(run.workflow_id, name, data))
    return _payloads.make_ref(data, value, name)


def _failure(call: TaskCall, exc: BaseException, started: float, retryable: bool) -> Outcome:
    try:
        error_ref = _checkpoint(call, exc, "err")
    except Exception:
        error_ref = None
    return Outcome(
        "failed", started, time.time(), os.getpid(), _HOST,
        error_type=f"{type(exc).__module__}.{type(exc).__qualname__}",
        message=str(exc), traceback="".join(traceback.format_exception(exc)),
        error=error_ref, retryable=retryable,
    )


def run_task(call_bytes: bytes, *deps: Any) -> tuple[Any, bytes]:
    """Run one attempt of a task (the body of the Ray task the engine submits).

    Takes ``TaskCall.to_bytes()``, then the values of ``call.value_deps`` in order (Ray resolved
    them), then, if ``call.ref_deps``, one list of ObjectRefs to those; returns the value and
    ``Outcome.to_bytes()``.
    """
    for dep in deps:
        if isinstance(dep, Unavailable):
            raise DependencyUnavailable(repr(dep))
    call = _decode_call(call_bytes)
    started = time.time()
    _reporter.begin(call, started)
    try:
        value, outcome = _run_attempt(call, deps, started)
        return value, outcome.to_bytes()
    finally:
        _reporter.end()


def _arguments(call: bytes, value_deps: tuple[int, ...], ref_deps: tuple[int, ...],
               deps: tuple[Any, ...]) -> tuple[list, dict, Any]:
    """The call's (args, kwargs, retry types) with its dependencies filled in (see run_task)."""
    args, kwargs, retry_types = _pickle.loads(call)
    if ref_deps:
        values, refs = dict(zip(value_deps, deps[:-1])), dict(zip(ref_deps, deps[-1]))
    else:
        values, refs = dict(zip(value_deps, deps)), {}
    return _fill(args, values, refs), _fill(kwargs, values, refs), retry_types


def _run_attempt(call: TaskCall, deps: tuple[Any, ...], started: float) -> tuple[Any, Outcome]:
    args, kwargs, retry_types = _arguments(call.call, call.value_deps, call.ref_deps, deps)
    _executing.task_id = call.task_id
    try:
        value = _function(call)(*args, **kwargs)
    except Exception as exc:
        # With catch_exceptions too: the driving actor retries it first, then hands
        # (None, exc) to the nearest task that catches, as 2.47 did.
        retryable = retry_types is not None and isinstance(exc, retry_types)
        return Unavailable(call.task_id, "failed"), _failure(call, exc, started, retryable)
    finally:
        _executing.task_id = None
    if isinstance(value, DAGNode):
        return _continue(call, value, started)
    if call.catch_exceptions:
        value = (value, None)
    try:
        output = _checkpoint(call, value, "out") if call.checkpoint else _unsaved(value)
    except _payloads.PayloadSerializationError as exc:
        return Unavailable(call.task_id, "failed"), _failure(call, exc, started, False)
    return value, Outcome("completed", started, time.time(), os.getpid(), _HOST, output=output)


def _unsaved(value: Any) -> PayloadRef:
    return PayloadRef(size=0, digest="", type_name=_payloads.type_name(value), codec="none")


def _continue(call: TaskCall, node: DAGNode, started: float) -> tuple[Any, Outcome]:
    """The task returned a DAG: build and checkpoint it; it runs in the task's place."""
    try:
        # Its ids are provisional: the driving actor makes them unique in the workflow.
        graph = build_graph(node, inherited=TaskOptions(checkpoint=call.checkpoint,
                                                        catch_exceptions=call.catch_exceptions))
        data = graph.to_bytes()
        ref = _checkpoint_bytes(call, data)
    except Exception as exc:
        return Unavailable(call.task_id, "failed"), _failure(call, exc, started, False)
    outcome = Outcome("continued", started, time.time(), os.getpid(), _HOST,
                      output=ref, graph=data)
    return Unavailable(call.task_id, "continued"), outcome


def _checkpoint_bytes(call: TaskCall, data: bytes) -> PayloadRef:
    ref = PayloadRef(size=len(data), digest=_payloads.digest(data), type_name="engine.WorkflowGraph")
    if len(data) <= _payloads.INLINE_LIMIT:
        ref.inline = data
    else:
        ref.blob = _payloads.blob_name("dag", call.task_id, call.attempt)
        run = call.run
        run_sync(storage_for(run.storage_url, run.storage_options).put_blob(run.workflow_id, ref.blob, data))
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
        self._current: tuple[TaskCall, float] | None = None  # swapped whole: atomic under the GIL
        self._armed = False  # the watcher thread is awake and will see the next task by itself
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._handles: dict[str, Any] = {}

    def begin(self, call: TaskCall, started: float) -> None:
        self._current = (call, started)  # before reading _armed: see _loop
        if not self._armed:  # no lock or event per task while the watcher is awake
            with self._lock:
                self._armed = True
                if self._thread is None:
                    self._thread = threading.Thread(target=self._loop, name="ray-durable-started",
                                                    daemon=True)
                    self._thread.start()
            self._wake.set()

    def end(self) -> None:
        self._current = None

    IDLE_S = 1.0  # the watcher blocks (and the next task wakes it) after this long without a task

    def _loop(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            idle_since = None
            while True:
                current = self._current
                if current is None:  # between tasks: look again shortly, block once idle for long
                    now = time.monotonic()
                    idle_since = idle_since or now
                    if now - idle_since < self.IDLE_S:
                        time.sleep(0.05)
                        continue
                    with self._lock:  # block only if no task began meanwhile
                        if self._current is None:
                            self._armed = False
                            break
                    continue
                idle_since = None
                call, started = current
                time.sleep(max(0.0, started + self.DELAY_S - time.time()))
                if self._current is current:
                    self._notify(call, started)
                    while self._current is current:  # a long task: wait for its end
                        time.sleep(0.05)

    def _notify(self, call: TaskCall, started: float) -> None:
        try:
            run = call.run
            handle = self._handles.get(run.manager_name)
            if handle is None:
                handle = self._handles[run.manager_name] = ray.get_actor(run.manager_name, namespace=NAMESPACE)
            handle.task_started.remote(run.workflow_id, run.run_id, call.task_id, call.attempt,
                                       started, os.getpid(), _HOST)
        except Exception:
            pass  # informational only; the outcome still records the start


_reporter = _StartReporter()

remote_run_task = ray.remote(max_retries=0)(run_task)


def run_plain(fn_bytes: bytes, call: bytes, value_deps: tuple[int, ...], ref_deps: tuple[int, ...],
              *deps: Any) -> Any:
    """A task of a DAG run without durability (continuation() called outside a workflow);
    dependencies come as in :func:`run_task`."""
    args, kwargs, _ = _arguments(call, value_deps, ref_deps, deps)
    return cloudpickle.loads(fn_bytes)(*args, **kwargs)


remote_run_plain = ray.remote(run_plain)
