"""The ray.workflow API: run, resume, outputs, status, metadata, continuation.

Every answer about a workflow comes from folding its log (replay.load_state);
only "is a live actor driving it?" asks the management actor.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import platform
import time
import uuid
from collections.abc import Iterator
from typing import Any

import ray
from ray.dag import DAGNode
from ray.exceptions import RayTaskError

from replay import WorkflowState, WorkflowStatus, WorkflowSubmitted, encode_event, load_state
from storage_backends import AppendConflictError, InvalidIdError, is_system_id, validate_log_id

from ..exceptions import WorkflowError, WorkflowNotFoundError, WorkflowNotResumableError, WorkflowQueueFullError
from ..graph._build import build_graph
from ..graph._options import check_json_metadata
from ..runtime import _worker
from ..store import _payloads
from ..store._outputs import output_from_state
from ..store._sync import run_sync
from ._init import context

ENGINE_VERSION = "0.1.0"


def validate_workflow_id(workflow_id: object) -> str:
    """A storage-safe workflow id: letters, digits, '.', '_', '-', not starting with '.' or '-'.

    A leading '_' is fine (ray.workflow accepted ids like ``__function_chain_test``);
    ``system:<name>`` ids are the engine's own logs and are refused.

    Raises:
        InvalidIdError: (a ValueError) the id is not a str, is empty, too long, or unsafe as a file
            or key name, or it is a system log's id.
    """
    workflow_id = validate_log_id(workflow_id)
    if is_system_id(workflow_id):
        raise InvalidIdError(f"workflow id {workflow_id!r} is reserved: 'system:...' ids are "
                             "ray-durable's own logs; use letters, digits, '.', '_' and '-'")
    return workflow_id


def _state(workflow_id: str) -> WorkflowState:
    validate_workflow_id(workflow_id)
    return run_sync(load_state(context().storage, workflow_id))


def _existing_state(workflow_id: str) -> WorkflowState:
    state = _state(workflow_id)
    if state.status is None:
        raise WorkflowNotFoundError(workflow_id, context().storage_url)
    return state


def _stored_output(workflow_id: str, state: WorkflowState) -> Any:
    return run_sync(_payloads.load_value(context().storage, workflow_id, state.output))


def _unwrap(ref: ray.ObjectRef) -> Any:
    """ray.get, raising our own workflow errors rather than Ray's wrapper around them."""
    try:
        return ray.get(ref)
    except RayTaskError as exc:
        if isinstance(exc.cause, WorkflowError):
            raise exc.cause from None
        raise


def _submit(dag: DAGNode, workflow_id: str, metadata: dict[str, Any]) -> bytes | None:
    """Write the submission event (the DAG as a payload) at seq 0.

    Returns:
        the record written, for the manager to start from without reading it back;
        None if the workflow already existed (nothing was written).
    """
    graph = build_graph(dag)
    data = graph.to_bytes()
    storage = context().storage
    if len(data) <= _payloads.INLINE_LIMIT:
        dag_ref = _payloads.make_ref(data, graph, None)
    else:
        if run_sync(storage.next_seq(workflow_id)) > 0:
            return None  # (a blob written now would sit in another workflow's directory)
        # Named by its content: a driver racing this one with the same id can only ever
        # overwrite it with the same bytes, whichever of the two submissions wins.
        name = f"dag-{_payloads.digest(data)}"
        run_sync(storage.put_blob(workflow_id, name, data))
        dag_ref = _payloads.make_ref(data, graph, name)
    event = WorkflowSubmitted(
        ts=time.time(), workflow_id=workflow_id, dag=dag_ref, user_metadata=metadata,
        ray_version=ray.__version__, engine_version=ENGINE_VERSION,
        python_version=platform.python_version(), runtime_env=_runtime_env(),
        packages=_package_versions(),
    )
    record = encode_event(event)
    try:
        run_sync(storage.append(workflow_id, [record], 0))
    except AppendConflictError:
        return None
    return record


@functools.lru_cache(maxsize=1)
def _package_versions() -> dict[str, str]:
    """Installed distributions and versions, recorded with each submission (computed once)."""
    versions = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata.get("Name")
        if name:
            versions[name] = dist.version
    return dict(sorted(versions.items()))


def _runtime_env() -> dict[str, Any] | None:
    try:
        env = ray.get_runtime_context().runtime_env
    except Exception:
        return None
    return dict(env) if env else None


def run_async(dag: DAGNode, *args: Any, workflow_id: str | None = None,
              metadata: dict[str, Any] | None = None, **kwargs: Any) -> ray.ObjectRef:
    """Run a workflow asynchronously; an existing ``workflow_id`` is resumed instead.

    Returns:
        an ObjectRef to the workflow's output.
    """
    workflow_id, submission = _submit_new(dag, args, kwargs, workflow_id, metadata)
    if submission is None:
        return resume_async(workflow_id)
    with _refused_leaves_no_trace(workflow_id):
        return _start(workflow_id, submission)


def run(dag: DAGNode, *args: Any, workflow_id: str | None = None,
        metadata: dict[str, Any] | None = None, **kwargs: Any) -> Any:
    """Run a workflow to its end and return its output (resumes an existing ``workflow_id``).

    One call to the manager starts the workflow and waits for its output (run_async
    takes two: it must say at once whether the workflow was accepted).
    """
    workflow_id, submission = _submit_new(dag, args, kwargs, workflow_id, metadata)
    if submission is None:
        return resume(workflow_id)
    with _refused_leaves_no_trace(workflow_id):
        return _unwrap(context().manager.run.remote(workflow_id, submission))


def _submit_new(dag: Any, args: tuple, kwargs: dict, workflow_id: str | None,
                metadata: dict[str, Any] | None) -> tuple[str, bytes | None]:
    """Check run's arguments and record the submission; (id, its record), or (id, None) if the
    id already existed (then the append at seq 0 found it: no read first)."""
    if args or kwargs:
        raise TypeError("workflow.run takes the DAG's inputs through .bind(...); "
                        f"unexpected arguments {args!r} {sorted(kwargs)!r}")
    if not isinstance(dag, DAGNode):
        raise TypeError(f"workflow.run needs a DAG made with f.bind(...), got {type(dag).__name__}")
    workflow_id = validate_workflow_id(workflow_id) if workflow_id is not None else _new_id()
    metadata = check_json_metadata(metadata, "workflow")
    return workflow_id, _submit(dag, workflow_id, metadata)


@contextlib.contextmanager
def _refused_leaves_no_trace(workflow_id: str) -> Iterator[None]:
    """A new workflow the manager's queue refused is deleted again: it never existed."""
    try:
        yield
    except WorkflowQueueFullError:
        run_sync(context().storage.delete(workflow_id))
        raise


def _start(workflow_id: str, submission: bytes | None = None) -> ray.ObjectRef:
    """Hand the workflow to the manager (which claims its log, or queues it) and return a ref to its output."""
    manager = context().manager
    _unwrap(manager.start.remote(workflow_id, submission))
    return manager.wait_output.remote(workflow_id)


def _new_id() -> str:
    return f"wf-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:12]}"


def resume_async(workflow_id: str) -> ray.ObjectRef:
    """Continue a workflow from its last durable point; returns an ObjectRef to its output."""
    state = _state(workflow_id)
    if state.status is None:
        raise WorkflowNotResumableError(workflow_id, "it does not exist")
    if state.status is WorkflowStatus.CANCELED:
        raise WorkflowNotResumableError(workflow_id, "it was canceled")
    if state.status is WorkflowStatus.SUCCESSFUL:
        return ray.put(_stored_output(workflow_id, state))
    return _start(workflow_id)


def resume(workflow_id: str) -> Any:
    """Continue a workflow from its last durable point and return its output."""
    return _unwrap(resume_async(workflow_id))


def get_output_async(workflow_id: str, *, task_id: str | None = None) -> ray.ObjectRef:
    """An ObjectRef to the workflow's (or one task's) stored output; waits if it is running."""
    state = _existing_state(workflow_id)
    ctx = context()
    if state.status not in (WorkflowStatus.SUCCESSFUL, WorkflowStatus.CANCELED):
        if ray.get(ctx.manager.live_status.remote(workflow_id)) is not None:
            return ctx.manager.wait_output.remote(workflow_id, task_id)
    return ray.put(_output_from_log(workflow_id, state, task_id))


def _output_from_log(workflow_id: str, state: WorkflowState, task_id: str | None) -> Any:
    return run_sync(output_from_state(context().storage, workflow_id, state, task_id))


def get_output(workflow_id: str, *, task_id: str | None = None) -> Any:
    """The workflow's (or one task's) output; waits if the workflow is still running."""
    return _unwrap(get_output_async(workflow_id, task_id=task_id))


def get_status(workflow_id: str) -> WorkflowStatus:
    """The workflow's status, from its log; RUNNING with no live driver reads RESUMABLE."""
    return _live_status(workflow_id, _existing_state(workflow_id))


def _live_status(workflow_id: str, state: WorkflowState) -> WorkflowStatus:
    if state.status in (WorkflowStatus.SUCCESSFUL, WorkflowStatus.CANCELED):
        return state.status
    live = ray.get(context().manager.live_status.remote(workflow_id))
    return combine_status(state.status, live)


def combine_status(logged: WorkflowStatus | None, live: str | None) -> WorkflowStatus | None:
    """The one rule for live status: what the manager holds wins; else RUNNING/PENDING in the
    log with nobody driving it is RESUMABLE (a driver, actor or cluster died)."""
    if live is not None and logged not in (WorkflowStatus.SUCCESSFUL, WorkflowStatus.CANCELED):
        return WorkflowStatus(live)
    if logged in (WorkflowStatus.RUNNING, WorkflowStatus.PENDING):
        return WorkflowStatus.RESUMABLE
    return logged


def get_metadata(workflow_id: str, task_id: str | None = None) -> dict[str, Any]:
    """ray.workflow's metadata shape, for the workflow or one of its tasks."""
    state = _existing_state(workflow_id)
    if task_id is None:
        submission = state.submission
        return {
            "status": str(_live_status(workflow_id, state)),
            "user_metadata": dict(state.user_metadata),
            "stats": {"start_time": state.start_time, "end_time": state.end_time},
            "runtime_env": submission.runtime_env,
            "packages": dict(submission.packages),
            "ray_version": submission.ray_version,
            "engine_version": submission.engine_version,
        }
    task = state.tasks.get(task_id)
    if task is None:
        raise ValueError(f"workflow {workflow_id!r} has no task {task_id!r}")
    return {
        "task_id": task_id,
        "task_options": dict(task.task_options),
        "user_metadata": dict(task.user_metadata),
        "stats": {"start_time": task.started_at, "end_time": task.ended_at},
        "status": str(task.status),
        "attempts": task.attempt,
    }


def continuation(dag_node: DAGNode) -> Any:
    """Inside a task: return ``dag_node`` to run it in the task's place. Outside: run it now."""
    if not isinstance(dag_node, DAGNode):
        raise TypeError(f"continuation needs a DAG made with f.bind(...), got {type(dag_node).__name__}")
    if _worker.in_workflow_task():
        return dag_node
    return _run_plain(dag_node)


def _run_plain(dag_node: DAGNode) -> Any:
    """Run a DAG as plain (non-durable) Ray tasks, as ray.workflow's continuation() did outside tasks."""
    graph = build_graph(dag_node)
    refs: dict[str, ray.ObjectRef] = {}
    for spec in graph.tasks.values():
        refs[spec.task_id] = _worker.remote_run_plain.options(**spec.ray_options).remote(
            graph.functions[spec.fn_key], spec.call, *[refs[d] for d in spec.deps])
    return ray.get(refs[graph.output_task_id])
