"""Turning a Ray DAG (``f.bind(...)``) into a workflow graph with stable task ids.

The graph separates *structure* (task ids, dependencies, options: plain data
the management actor reads) from *code and arguments* (cloudpickled bytes that
only the worker running a task unpickles). So the long-lived actor never needs
the user's modules, and a stored graph can be inspected without running code.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import cloudpickle
import ray
from ray.dag import DAGNode, FunctionNode

from replay import runtime_envs

from . import _pickle
from ._options import TaskOptions, node_options
from ..store._payloads import dumps

# Ray options the engine sets itself on every task it submits.
_ENGINE_RAY_OPTIONS = ("num_returns", "max_retries", "retry_exceptions")


class Dep:
    """Placeholder for the output of task ``deps[index]`` inside a task's arguments."""

    __slots__ = ("index",)

    def __init__(self, index: int):
        self.index = index

    def __reduce__(self):
        return (Dep, (self.index,))


@dataclass
class TaskSpec:
    """One task of a workflow graph."""

    task_id: str
    name: str  # module.qualname of the function; checked against the log on resume
    deps: tuple[str, ...]  # task ids whose outputs fill the Dep placeholders
    fn_key: str  # key into WorkflowGraph.functions
    call: bytes  # cloudpickle of (args, kwargs, retry_exception_types) with Dep placeholders
    ray_options: dict[str, Any] = field(default_factory=dict)
    options: TaskOptions = field(default_factory=TaskOptions)

    def recorded_options(self) -> dict[str, Any]:
        """The task's options as plain data for the log and get_metadata."""
        opts = self.options
        recorded: dict[str, Any] = {
            "max_retries": opts.max_retries,
            "retry_exceptions": bool(opts.retry_exceptions),
            "catch_exceptions": opts.catch_exceptions,
            "checkpoint": opts.checkpoint,
        }
        for key, value in self.ray_options.items():
            if key == "runtime_env" and isinstance(value, dict):
                value = runtime_envs.recorded(value)  # env var names, never values (secrets)
            recorded[key] = value if _is_plain(value) else repr(value)
        return recorded


@dataclass
class WorkflowGraph:
    """Tasks in topological order (dependencies first) and the task whose output is the result."""

    tasks: dict[str, TaskSpec]
    output_task_id: str
    functions: dict[str, bytes]  # fn_key -> cloudpickled function

    def to_bytes(self) -> bytes:
        return cloudpickle.dumps(self)

    @staticmethod
    def from_bytes(data: bytes) -> WorkflowGraph:
        graph = _pickle.loads(data)
        if not isinstance(graph, WorkflowGraph):
            raise TypeError(f"stored DAG is a {type(graph).__name__}, not a WorkflowGraph")
        return graph


def _is_plain(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_is_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_plain(v) for k, v in value.items())
    return False


def function_name(func: Any) -> str:
    return f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', repr(func))}"


def _children(node: FunctionNode) -> list[FunctionNode]:
    found: list[FunctionNode] = []
    _walk(list(node._bound_args) + list(node._bound_kwargs.values()), found)
    return found


def _walk(value: Any, found: list[FunctionNode]) -> None:
    if isinstance(value, FunctionNode):
        found.append(value)
    elif isinstance(value, DAGNode):
        raise TypeError(
            f"workflows run DAGs of remote functions (f.bind(...)) only; got a {type(value).__name__}"
        )
    elif isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            _walk(item, found)
    elif isinstance(value, dict):
        for item in value.values():
            _walk(item, found)


def build_graph(root: Any, id_suffix: str = "") -> WorkflowGraph:
    """Build the graph of the DAG ending in ``root``.

    Args:
        root: a FunctionNode (``f.bind(...)``).
        id_suffix: appended to generated task ids, to keep a continuation's ids
            apart from its parent workflow's. User-given task ids are kept as they are.
    """
    if not isinstance(root, FunctionNode):
        raise TypeError(
            f"a workflow needs a DAG made with a remote function's .bind(...), got {type(root).__name__}"
        )
    order = _post_order(root)
    ids: dict[int, str] = {}
    used: set[str] = set()
    last_suffix: dict[str, int] = {}  # base name -> the last _n tried (keeps naming linear)
    tasks: dict[str, TaskSpec] = {}
    functions: dict[str, bytes] = {}
    fn_keys: dict[int, str] = {}
    for node in order:
        opts = node_options(node)
        task_id = _assign_id(node, opts, used, id_suffix, last_suffix)
        ids[id(node)] = task_id
        deps: list[str] = []
        dep_index: dict[str, int] = {}

        def substitute(value: Any) -> Any:
            if isinstance(value, FunctionNode):
                dep_id = ids[id(value)]
                if dep_id not in dep_index:
                    dep_index[dep_id] = len(deps)
                    deps.append(dep_id)
                return Dep(dep_index[dep_id])
            if isinstance(value, ray.ObjectRef):
                return ray.get(value)  # checkpointed by value
            if isinstance(value, list):
                return [substitute(v) for v in value]
            if isinstance(value, tuple) and not hasattr(value, "_fields"):
                return tuple(substitute(v) for v in value)
            if isinstance(value, dict):
                return {k: substitute(v) for k, v in value.items()}
            return value

        args = [substitute(a) for a in node._bound_args]
        kwargs = {k: substitute(v) for k, v in node._bound_kwargs.items()}
        ray_options = dict(node._bound_options)
        opts = _fold_ray_retry_options(node, opts, ray_options)
        retry_types = (opts.retry_exceptions if isinstance(opts.retry_exceptions, tuple)
                       else (Exception,) if opts.retry_exceptions else None)
        call = dumps((args, kwargs, retry_types), f"an argument of task {task_id!r}")
        func = node._body
        if id(func) not in fn_keys:
            fn_bytes = dumps(func, f"the function of task {task_id!r}")
            key = hashlib.blake2b(fn_bytes, digest_size=12).hexdigest()
            functions[key] = fn_bytes
            fn_keys[id(func)] = key
        stored_opts = opts.merged(retry_exceptions=bool(opts.retry_exceptions))
        tasks[task_id] = TaskSpec(task_id, function_name(func), tuple(deps), fn_keys[id(func)], call,
                                  ray_options, stored_opts)
    return WorkflowGraph(tasks, ids[id(root)], functions)


def _fold_ray_retry_options(node: FunctionNode, opts: TaskOptions, ray_options: dict[str, Any]) -> TaskOptions:
    """Ray's own max_retries / retry_exceptions become workflow retries unless workflow options set them."""
    explicit = getattr(node, "__ray_durable_options__", None) or {}
    changes: dict[str, Any] = {}
    for key in ("max_retries", "retry_exceptions"):
        if key in ray_options and key not in explicit:
            changes[key] = ray_options[key]
    for key in _ENGINE_RAY_OPTIONS:
        ray_options.pop(key, None)
    if "retry_exceptions" in changes and isinstance(changes["retry_exceptions"], list):
        changes["retry_exceptions"] = tuple(changes["retry_exceptions"])
    return opts.merged(**changes) if changes else opts


def _assign_id(node: FunctionNode, opts: TaskOptions, used: set[str], suffix: str,
               last_suffix: dict[str, int]) -> str:
    """The given task_id, else the function's name, then name_1, name_2, ...: the first one free.

    ``last_suffix`` remembers where the search for each name stopped; ids below it
    are all taken (``used`` only grows), so starting there gives the same id in
    one step instead of n for the n-th task of one function.
    """
    if opts.task_id is not None:
        if opts.task_id in used:
            raise ValueError(f"task_id {opts.task_id!r} is used by two tasks of the same workflow")
        used.add(opts.task_id)
        return opts.task_id
    base = getattr(node._body, "__name__", "task") + suffix
    n = last_suffix.get(base, 0)
    candidate = base if n == 0 else f"{base}_{n}"
    while candidate in used:
        n += 1
        candidate = f"{base}_{n}"
    last_suffix[base] = n
    used.add(candidate)
    return candidate


def _post_order(root: FunctionNode) -> list[FunctionNode]:
    """Nodes with dependencies first; iterative, so 10,000-deep chains do not hit the recursion limit."""
    order: list[FunctionNode] = []
    state: dict[int, bool] = {}  # id -> finished?
    stack: list[tuple[FunctionNode, bool]] = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        key = id(node)
        if expanded:
            if not state.get(key):
                state[key] = True
                order.append(node)
            continue
        if key in state:
            if not state[key]:
                raise ValueError("the DAG has a cycle")
            continue
        state[key] = False
        stack.append((node, True))
        for child in reversed(_children(node)):
            if id(child) not in state:
                stack.append((child, False))
            elif not state[id(child)]:
                raise ValueError("the DAG has a cycle")
    return order


def continuation_suffix(parent_task_id: str) -> str:
    """Suffix for the generated ids of a continuation's tasks: short, stable, unique per parent."""
    return "@" + hashlib.blake2b(parent_task_id.encode(), digest_size=5).hexdigest()
