"""Turning a Ray DAG (``f.bind(...)``) into a workflow graph with stable task ids.

The graph separates *structure* (task ids, dependencies, options: plain data
the management actor reads) from *code and arguments* (cloudpickled bytes that
only the worker running a task unpickles). So the long-lived actor never needs
the user's modules, and a stored graph can be inspected without running code.

Task ids and argument passing follow ray.workflow 2.47 (workflow_state_from_dag.py there):

* a task's id is its ``task_id`` option, else ``<module>.<qualname>`` of its function
  (slugified); a second task asking for the same id gets ``<id>_1``, a third ``<id>_2``,
  in the DAG's post-order (arguments left to right, then the task);
* a DAG node that is a direct argument (positional or keyword) arrives as its value; one
  nested inside a list, tuple or dict arrives as an ``ObjectRef``, as plain Ray passes them;
  an ``ObjectRef`` the user passed is checkpointed by value and arrives the same way;
* ``InputNode`` / ``inp.x`` / ``inp[0]`` take the values given to ``workflow.run(dag, ...)``
  by the rules of Ray's own ``dag.execute`` (one positional input is the value itself).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass, field, replace
from typing import Any

import cloudpickle
import ray
from ray.dag import DAGNode, FunctionNode, InputAttributeNode, InputNode
from ray.dag.input_node import DAGInputData

from replay import runtime_envs

from ..store._payloads import dumps
from . import _pickle
from ._options import TaskOptions, node_options
from ._waits import WaitSpec, wait_spec

# Ray options the engine sets itself on every task it submits.
_ENGINE_RAY_OPTIONS = ("num_returns", "max_retries", "retry_exceptions")

GRAPH_FORMAT = 2  # 1 (0.1): every dependency passed by value, in the order of ``deps``


class Dep:
    """Placeholder for the value of task ``deps[index]`` (a direct argument of the task)."""

    __slots__ = ("index",)

    def __init__(self, index: int):
        self.index = index

    def __reduce__(self):
        return (Dep, (self.index,))

    def __eq__(self, other: object) -> bool:  # so two unpickled calls compare (workflow.check)
        return type(other) is type(self) and other.index == self.index

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.index))


class DepRef(Dep):
    """Placeholder for an ObjectRef to the value of ``deps[index]`` (nested in a container)."""

    __slots__ = ()

    def __reduce__(self):
        return (DepRef, (self.index,))


class PutRef:
    """A nested ObjectRef the user passed, checkpointed by value; the worker puts it back."""

    __slots__ = ("value",)

    def __init__(self, value: Any):
        self.value = value

    def __reduce__(self):
        return (PutRef, (self.value,))

    def __eq__(self, other: object) -> bool:
        return type(other) is PutRef and other.value == self.value

    __hash__ = None  # type: ignore[assignment]


@dataclass
class TaskSpec:
    """One task of a workflow graph."""

    task_id: str
    name: str  # module.qualname of the function; checked against the log on resume
    deps: tuple[str, ...]  # task ids whose outputs fill the Dep/DepRef placeholders
    fn_key: str  # key into WorkflowGraph.functions
    call: bytes  # cloudpickle of (args, kwargs, retry_exception_types) with placeholders
    ray_options: dict[str, Any] = field(default_factory=dict)
    options: TaskOptions = field(default_factory=TaskOptions)
    base_id: str = ""  # the id asked for, before de-duplication ("" in 0.1 graphs)
    value_deps: tuple[int, ...] | None = None  # indexes of deps passed as values (None: 0.1, all)
    ref_deps: tuple[int, ...] = ()  # indexes of deps passed as ObjectRefs
    wait: WaitSpec | None = None  # a timer or an event wait (workflow.sleep / wait_for_event)

    def passed_by_value(self) -> tuple[int, ...]:
        return tuple(range(len(self.deps))) if self.value_deps is None else self.value_deps

    def recorded_options(self) -> dict[str, Any]:
        """The task's options as plain data for the log, in 2.47's ``task_options`` shape."""
        opts = self.options
        return {
            "task_type": "FUNCTION",
            "max_retries": opts.max_retries,
            "catch_exceptions": opts.catch_exceptions,
            "retry_exceptions": bool(opts.retry_exceptions),
            "checkpoint": opts.checkpoint,
            "ray_options": {k: _recorded(k, v) for k, v in self.ray_options.items()},
        }


@dataclass
class WorkflowGraph:
    """Tasks in topological order (dependencies first) and the task whose output is the result."""

    tasks: dict[str, TaskSpec]
    output_task_id: str
    functions: dict[str, bytes]  # fn_key -> cloudpickled function
    format: int = 1  # GRAPH_FORMAT of the code that built it (0.1 graphs lack the attribute)

    def to_bytes(self) -> bytes:
        return cloudpickle.dumps(self)

    @staticmethod
    def from_bytes(data: bytes) -> WorkflowGraph:
        graph = _pickle.loads(data)
        if not isinstance(graph, WorkflowGraph):
            raise TypeError(f"stored DAG is a {type(graph).__name__}, not a WorkflowGraph")
        return graph

    def renamed(self, ids: dict[str, str]) -> WorkflowGraph:
        """The same graph with task ids mapped through ``ids`` (missing ones unchanged)."""
        if not ids:
            return self
        tasks = {}
        for spec in self.tasks.values():
            new_id = ids.get(spec.task_id, spec.task_id)
            tasks[new_id] = replace(spec, task_id=new_id, deps=tuple(ids.get(d, d) for d in spec.deps))
        return WorkflowGraph(tasks, ids.get(self.output_task_id, self.output_task_id), self.functions,
                             self.format)


def unique_ids(graph: WorkflowGraph, used: set[str]) -> dict[str, str]:
    """New ids for a continuation's tasks that no task of the workflow has (``used``).

    Each task gets the first free of ``base``, ``base_1``, ``base_2`` ... for the id it asked
    for, as 2.47 named every task of a workflow, continuations included. ``used`` grows.
    """
    ids: dict[str, str] = {}
    last_suffix: dict[str, int] = {}
    for spec in graph.tasks.values():
        ids[spec.task_id] = _first_free(spec.base_id or spec.task_id, used, last_suffix)
    return {old: new for old, new in ids.items() if old != new}


def _recorded(key: str, value: Any) -> Any:
    """A Ray option as the log records it: plain data, and a runtime env without secret values."""
    if key == "runtime_env" and isinstance(value, dict):
        value = runtime_envs.recorded(value)  # env var names, never values
    return value if _is_plain(value) else repr(value)


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


def slugify(value: str) -> str:
    """ASCII letters, digits, ``_``, ``.`` and ``-`` only; spaces and dash runs become one ``-``."""
    value = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode("ascii")
    value = re.sub(r"[^\w.\-]", "", value).strip()
    return re.sub(r"[-\s]+", "-", value)


def default_task_id(func: Any) -> str:
    """2.47's default task id: ``<module>.<qualname>``, slugified (``outer.<locals>.f`` -> ``outer.locals.f``)."""
    module = getattr(func, "__module__", None) or "__anonymous_module__"
    qualname = getattr(func, "__qualname__", None) or "__anonymous_func__"
    return f"{module}.{slugify(qualname)}"


def _children(node: FunctionNode) -> list[FunctionNode]:
    found: list[FunctionNode] = []
    _walk(list(node._bound_args) + list(node._bound_kwargs.values()), found)
    return found


def _walk(value: Any, found: list[FunctionNode]) -> None:
    if isinstance(value, FunctionNode):
        found.append(value)
    elif isinstance(value, (InputNode, InputAttributeNode)):
        return
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


class _Inputs:
    """The values ``workflow.run(dag, *args, **kwargs)`` gives InputNode, by Ray's rules."""

    def __init__(self, args: tuple, kwargs: dict, given: bool):
        self.given = given
        # Ray's InputNode._execute_impl: one positional input is the value itself.
        self.value = args[0] if len(args) == 1 and not kwargs else DAGInputData(*args, **kwargs)
        self.used = False

    def resolve(self, node: DAGNode) -> Any:
        if not self.given:
            raise ValueError(
                "the DAG reads an InputNode, but no inputs were given: pass them as "
                "workflow.run(dag, *args, **kwargs) (a continuation cannot read InputNode)")
        self.used = True
        if isinstance(node, InputNode):
            return self.value
        key, accessor = node._key, node._accessor_method
        value = self.value
        try:
            if isinstance(value, DAGInputData) or accessor == "__getitem__" or isinstance(key, int):
                return value[key]
            return getattr(value, key)
        except (KeyError, IndexError, AttributeError) as exc:
            raise ValueError(f"the DAG reads input {key!r}, which workflow.run was not given "
                             f"({type(exc).__name__}: {exc})") from None


def build_graph(root: Any, inputs: tuple[tuple, dict] | None = None,
                inherited: TaskOptions | None = None) -> WorkflowGraph:
    """Build the graph of the DAG ending in ``root``.

    Args:
        root: a FunctionNode (``f.bind(...)``).
        inputs: ``(args, kwargs)`` given to ``workflow.run`` for the DAG's InputNode, if any.
        inherited: for a continuation, the options of the task that returned it: its
            ``checkpoint`` is the default of every task of the sub-DAG, and its
            ``catch_exceptions`` the default of the sub-DAG's output task (as in 2.47).

    Raises:
        TypeError: ``root`` is not a FunctionNode, or the DAG holds other kinds of nodes.
        ValueError: a cycle; InputNode without inputs, or inputs the DAG does not read.
    """
    if not isinstance(root, FunctionNode):
        raise TypeError(
            f"a workflow needs a DAG made with a remote function's .bind(...), got {type(root).__name__}"
        )
    given = inputs is not None and (bool(inputs[0]) or bool(inputs[1]))
    run_inputs = _Inputs(*(inputs or ((), {})), given=given)
    order = _post_order(root)
    ids: dict[int, str] = {}
    used: set[str] = set()
    last_suffix: dict[str, int] = {}  # base id -> the last _n tried (keeps naming linear)
    tasks: dict[str, TaskSpec] = {}
    functions: dict[str, bytes] = {}
    fn_keys: dict[int, str] = {}
    for node in order:
        given_options, ray_options = node_options(node)
        wait_marker = given_options.pop("wait", None)
        func = node._body
        base_id = given_options.get("task_id") or default_task_id(func)
        task_id = _first_free(base_id, used, last_suffix)
        ids[id(node)] = task_id
        deps: list[str] = []
        dep_index: dict[str, int] = {}
        by_value: set[int] = set()
        by_ref: set[int] = set()

        def substitute(value: Any, nested: bool) -> Any:
            if isinstance(value, FunctionNode):
                dep_id = ids[id(value)]
                if dep_id not in dep_index:
                    dep_index[dep_id] = len(deps)
                    deps.append(dep_id)
                index = dep_index[dep_id]
                (by_ref if nested else by_value).add(index)
                return DepRef(index) if nested else Dep(index)
            if isinstance(value, (InputNode, InputAttributeNode)):
                return substitute(run_inputs.resolve(value), nested)
            if isinstance(value, ray.ObjectRef):  # checkpointed by value
                return PutRef(ray.get(value)) if nested else ray.get(value)
            if isinstance(value, list):
                return [substitute(v, True) for v in value]
            if isinstance(value, tuple) and not hasattr(value, "_fields"):
                return tuple(substitute(v, True) for v in value)
            if isinstance(value, dict):
                return {k: substitute(v, True) for k, v in value.items()}
            return value

        args = [substitute(a, False) for a in node._bound_args]
        kwargs = {k: substitute(v, False) for k, v in node._bound_kwargs.items()}
        wait = wait_spec(wait_marker, args, _dep_index) if wait_marker else None
        opts = _task_options(given_options, ray_options, inherited, is_root=node is root)
        for key in _ENGINE_RAY_OPTIONS:
            ray_options.pop(key, None)
        retry_types = (opts.retry_exceptions if isinstance(opts.retry_exceptions, tuple)
                       else (Exception,) if opts.retry_exceptions else None)
        call = dumps((args, kwargs, retry_types), f"an argument of task {task_id!r}")
        if id(func) not in fn_keys:
            fn_bytes = dumps(func, f"the function of task {task_id!r}")
            key = hashlib.blake2b(fn_bytes, digest_size=12).hexdigest()
            functions[key] = fn_bytes
            fn_keys[id(func)] = key
        stored_opts = opts.merged(retry_exceptions=bool(opts.retry_exceptions))
        tasks[task_id] = TaskSpec(task_id, function_name(func), tuple(deps), fn_keys[id(func)], call,
                                  ray_options, stored_opts, base_id, tuple(sorted(by_value)),
                                  tuple(sorted(by_ref)), wait)
    if given and not run_inputs.used:
        raise ValueError("workflow.run was given inputs, but the DAG has no InputNode to read them; "
                         "build it inside `with InputNode() as inp:` or drop the inputs")
    return WorkflowGraph(tasks, ids[id(root)], functions, GRAPH_FORMAT)


def reads_input(root: FunctionNode) -> bool:
    """Whether the DAG ending in ``root`` reads an InputNode (directly or in a container)."""
    def reads(value: Any) -> bool:
        if isinstance(value, (InputNode, InputAttributeNode)):
            return True
        if isinstance(value, (list, tuple, set, frozenset)):
            return any(reads(v) for v in value)
        if isinstance(value, dict):
            return any(reads(v) for v in value.values())
        return False

    return any(reads(list(node._bound_args) + list(node._bound_kwargs.values())) for node in _post_order(root))


def _dep_index(value: Any) -> int | None:
    return value.index if isinstance(value, Dep) and not isinstance(value, DepRef) else None


def _task_options(given: dict[str, Any], ray_options: dict[str, Any], inherited: TaskOptions | None,
                  is_root: bool) -> TaskOptions:
    """The task's options: given ones, then Ray's own max_retries / retry_exceptions, then what a
    continuation inherits from the task that returned it, then the defaults."""
    values = dict(given)
    values.pop("task_id", None)
    for key in ("max_retries", "retry_exceptions"):
        if key in ray_options and key not in values:
            values[key] = ray_options[key]
    if isinstance(values.get("retry_exceptions"), list):
        values["retry_exceptions"] = tuple(values["retry_exceptions"])
    if inherited is not None:
        values.setdefault("checkpoint", inherited.checkpoint)
        if is_root:
            values.setdefault("catch_exceptions", inherited.catch_exceptions)
    return TaskOptions(task_id=given.get("task_id"), **values)


def _first_free(base: str, used: set[str], last_suffix: dict[str, int]) -> str:
    """``base`` if free, else the first free of ``base_1``, ``base_2``, ...; marks it used.

    ``last_suffix`` remembers where the search for each base stopped; ids below it are
    all taken (``used`` only grows), so the n-th task of one name takes one step, not n.
    """
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
