"""The ray.workflow API: run, resume, outputs, status, metadata, continuation.

Every answer about a workflow comes from folding its log (replay.load_state);
only "is a live actor driving it?" asks the management actor.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import logging
import os
import platform
import time
import uuid
from collections.abc import Iterator
from typing import Any

import ray
from ray.dag import DAGNode

from replay import (
    ForkOrigin,
    PayloadRef,
    TaskStatus,
    WorkflowState,
    WorkflowStatus,
    WorkflowSubmitted,
    encode_event,
    load_state,
    runtime_envs,
)
from storage_backends import AppendConflictError

from .._names import validate_workflow_id
from ..exceptions import (
    WorkflowError,
    WorkflowNotFoundError,
    WorkflowNotResumableError,
    WorkflowQueueFullError,
    as_ray_task_error,
)
from ..graph._build import WorkflowGraph, build_graph
from ..graph._options import check_json_metadata
from ..runtime import _worker
from ..runtime._http_deploy import deploy_once, report
from ..runtime._manager import SubmissionConflict, SubmissionNotStored
from ..store import _payloads
from ..store._leases import read_lease
from ..store._outputs import output_from_state
from ..store._status import metadata as workflow_metadata
from ..store._status import needs_lease, status_of
from ..store._status import stats as _stats
from ..store._sync import run_sync
from . import _manager_client
from ._init import context

ENGINE_VERSION = "0.1.0"
logger = logging.getLogger(__name__)


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


def _unwrap(ref: ray.ObjectRef, workflow_id: str | None = None, task_id: str | None = None) -> Any:
    """ray.get of a manager call that waits on ``workflow_id``'s output (see _manager_client.result):
    our errors as 2.47 raised them, and through a manager gone for good, a wait on its successor."""
    return _manager_client.result(ref, workflow_id, context() if workflow_id is not None else None, task_id)


def _submit(dag: DAGNode, workflow_id: str, metadata: dict[str, Any],
            inputs: tuple[tuple, dict], keep: str = "") -> tuple[bytes | None, dict, bytes | None]:
    """Write the submission event (the DAG and its inputs as payloads) at seq 0.

    Returns:
        the record written, for the manager to start from without reading it back, or None if
        the workflow already existed (nothing was written); the values of the runtime env that
        the record leaves out (secrets), for the manager's run of it, never stored; and what
        the storage knows of the new log's tail (``Storage.tail_token``), so that the manager's
        claim need not look it up again (on S3, a LIST and a GET).
    """
    record, env_values = _submission(dag, workflow_id, metadata, inputs, keep)
    if record is None:
        return None, {}, None
    storage = context().storage
    try:
        run_sync(storage.append(workflow_id, [record], 0))
    except AppendConflictError:
        return None, {}, None
    return record, env_values, storage.tail_token(workflow_id)


def _submission(dag: DAGNode, workflow_id: str, metadata: dict[str, Any],
                inputs: tuple[tuple, dict], keep: str = "") -> tuple[bytes | None, dict]:
    """The submission record of a new workflow (its DAG stored first if too big to go inline),
    and the runtime env values it leaves out; (None, {}) if the DAG's store found the id taken."""
    graph = build_graph(dag, inputs=inputs)
    if any(spec.wait is not None and spec.wait.kind == "mailbox" for spec in graph.tasks.values()):
        _deploy_http_provider()
    dag_ref = dag_payload(graph, workflow_id)
    if dag_ref is None:
        return None, {}
    event, env_values = submission_event(workflow_id, dag_ref, metadata, _inputs_ref(inputs), keep=keep)
    return encode_event(event), env_values


def dag_payload(graph: WorkflowGraph, workflow_id: str) -> PayloadRef | None:
    """The graph as a payload of ``workflow_id``: inline if small, else a blob (None if the
    workflow already exists: a blob written now would sit in another workflow's directory)."""
    data = graph.to_bytes()
    if len(data) <= _payloads.INLINE_LIMIT:
        return _payloads.make_ref(data, graph, None)
    storage = context().storage
    if run_sync(storage.next_seq(workflow_id)) > 0:
        return None
    # Named by its content: a driver racing this one with the same id can only ever
    # overwrite it with the same bytes, whichever of the two submissions wins.
    name = f"dag-{_payloads.digest(data)}"
    run_sync(storage.put_blob(workflow_id, name, data))
    return _payloads.make_ref(data, graph, name)


def submission_event(workflow_id: str, dag_ref: PayloadRef, metadata: dict[str, Any],
                     inputs: PayloadRef | None, forked_from: ForkOrigin | None = None, keep: str = ""
                     ) -> tuple[WorkflowSubmitted, dict]:
    """The ``workflow.submitted`` event for this driver's job, and the runtime env values it
    leaves out (secrets), for the manager's run of it, never stored. It names the manager it
    is handed to (the workflow's shard), so that one's successor, or after its lease expired
    the next cluster of its application, takes it on if the hand-over never arrives."""
    job_env = _runtime_env()
    recorded_env = runtime_envs.recorded(job_env)  # env var names, never values
    ctx = context()
    handed_to = ctx.manager_identities[ctx.shard_for(workflow_id)] if ctx.manager_identities else {}
    event = WorkflowSubmitted(
        ts=time.time(), workflow_id=workflow_id, dag=dag_ref, user_metadata=metadata,
        ray_version=ray.__version__, engine_version=ENGINE_VERSION,
        python_version=platform.python_version(), runtime_env=recorded_env,
        packages=_package_versions(), inputs=inputs, forked_from=forked_from, keep=keep,
        owner=handed_to.get("owner", ""), seat=handed_to.get("seat", ""),
        application=handed_to.get("application", ""),
    )
    return event, runtime_envs.supplied(recorded_env, job_env, {})[0]


def _deploy_http_provider() -> None:
    """The workflow waits on an HTTPListener: its endpoint is to answer from the moment run returns."""
    ref = deploy_once(context().spec)
    if ref is not None:
        try:
            ray.get(ref)
        except Exception as exc:
            report(exc)


def _inputs_ref(inputs: tuple[tuple, dict]) -> PayloadRef | None:
    """The InputNode values, inline if small; else only described (they are in the DAG's calls)."""
    if not inputs[0] and not inputs[1]:
        return None
    data = _payloads.dumps(inputs, "an input of workflow.run")
    if len(data) <= _payloads.INLINE_LIMIT:
        return _payloads.make_ref(data, inputs, None)
    return PayloadRef(size=len(data), digest=_payloads.digest(data), type_name="builtins.tuple", codec="none")


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


KEEP_CHOICES = (None, "output")


def run_async(dag: DAGNode, *args: Any, workflow_id: str | None = None,
              metadata: dict[str, Any] | None = None, keep: str | None = None, **kwargs: Any) -> ray.ObjectRef:
    """Run a workflow asynchronously; an existing ``workflow_id`` is resumed instead.

    Args:
        dag: the DAG (``f.bind(...)``) whose output is the workflow's.
        *args, **kwargs: the values of the DAG's ``InputNode`` (as ``dag.execute(*args,
            **kwargs)`` takes them); recorded with the submission, so a resume needs none.
        workflow_id: letters, digits, ``.``, ``_``, ``-`` (at most 128); default a new id.
        metadata: JSON-serializable dict, returned by ``get_metadata(workflow_id)``.
        keep: None (default): every task's output stays in storage. ``"output"``: once the
            workflow succeeds, its intermediate outputs (and every other payload blob) are
            dropped and only its result is kept; recorded with the submission, so a resume
            anywhere does the same. New in ray-durable (ray.workflow kept everything), so an
            ``InputNode`` keyword input may not be named ``keep``.

    Returns:
        an ObjectRef to the workflow's output, once the submission (the workflow's first event:
        its DAG, inputs and metadata) is durable in its log. The manager claims and runs it
        afterwards, without the caller waiting (unless ``max_pending_workflows`` is set). A
        driver that dies before Ray delivered that hand-over leaves the workflow RESUMABLE
        (``resume`` / ``resume_all`` run it), never lost. An error in the hand-over (another
        driver claimed the same new id first) comes out of the ref.

    Raises:
        WorkflowRunningError: the id is being run (also a RuntimeError, as 2.47 raised).
        WorkflowQueueFullError: ``max_pending_workflows`` are queued (also a ``queue.Full``).
        ValueError / TypeError: a bad id, metadata, DAG, inputs or ``keep`` (nothing is written).
    """
    workflow_id, submission, env_values, tail = _submit_new(dag, args, kwargs, workflow_id, metadata, keep)
    if submission is None:
        return resume_async(workflow_id)
    with _refused_leaves_no_trace(workflow_id):
        return _start(workflow_id, submission, env_values, tail)


def run(dag: DAGNode, *args: Any, workflow_id: str | None = None,
        metadata: dict[str, Any] | None = None, keep: str | None = None, **kwargs: Any) -> Any:
    """Run a workflow to its end and return its output (resumes an existing ``workflow_id``).

    Arguments as :func:`run_async`. One call to the manager writes the submission, starts the
    workflow and waits for its output: the manager appends the submission together with its
    claim (one append; on S3 one PUT), since the caller waits for the output anyway. If the
    driver dies before that append, the workflow was never created; once it is durable, the
    workflow is never lost (a manager lost meanwhile is restarted and goes on with it).

    Raises:
        WorkflowExecutionError: a task failed and nothing caught it; the error is also a
            ``ray.exceptions.RayTaskError``, as 2.47's was. ``.cause`` is the task's exception.
        WorkflowCancellationError: it was canceled meanwhile (also a RayTaskError).
        and what :func:`run_async` raises.
    """
    workflow_id, metadata = _checked_arguments(dag, workflow_id, metadata, keep)
    submission, env_values = _submission(dag, workflow_id, metadata, (args, kwargs), keep or "")
    if submission is None:
        return resume(workflow_id)
    try:
        # Written by the manager with its claim (written=False). A full queue writes nothing,
        # so there is nothing to take back (the id may even be another workflow's).
        return _manager_client.drive(context(), "run", workflow_id, submission, env_values, None, False)
    except SubmissionConflict:  # the id has a log: run of an existing id resumes it, as in 2.47
        return resume(workflow_id)
    except SubmissionNotStored as exc:  # the storage's own error, as the driver's append raised it
        raise exc.error from None


def _submit_new(dag: Any, args: tuple, kwargs: dict, workflow_id: str | None,
                metadata: dict[str, Any] | None, keep: str | None = None
                ) -> tuple[str, bytes | None, dict, bytes | None]:
    """Check run's arguments and record the submission; (id, its record), or (id, None) if the
    id already existed (then the append at seq 0 found it: no read first)."""
    workflow_id, metadata = _checked_arguments(dag, workflow_id, metadata, keep)
    return (workflow_id, *_submit(dag, workflow_id, metadata, (args, kwargs), keep or ""))


def _checked_arguments(dag: Any, workflow_id: str | None, metadata: dict[str, Any] | None,
                       keep: str | None) -> tuple[str, dict[str, Any]]:
    """run's arguments checked: the workflow id (a new one if None) and the metadata."""
    if not isinstance(dag, DAGNode):
        raise TypeError(f"workflow.run needs a DAG made with f.bind(...), got {type(dag).__name__}")
    if keep not in KEEP_CHOICES:
        raise ValueError(f"keep must be None (every output stays) or 'output' (only the workflow's result "
                         f"stays once it succeeds), got {keep!r}")
    workflow_id = validate_workflow_id(workflow_id) if workflow_id is not None else _new_id()
    return workflow_id, check_json_metadata(metadata, "workflow")


@contextlib.contextmanager
def _refused_leaves_no_trace(workflow_id: str) -> Iterator[None]:
    """A new workflow the manager's queue refused is deleted again: it never existed."""
    try:
        yield
    except WorkflowQueueFullError:
        run_sync(context().storage.delete(workflow_id))
        raise


def _start(workflow_id: str, submission: bytes | None, env_values: dict,
           tail: bytes | None = None) -> ray.ObjectRef:
    """Hand the workflow to the manager and return a ref to its output (a call Ray sends again
    to a restarted manager).

    A new workflow (``submission``, already durable) is handed over without waiting for the
    manager, unless ``max_pending_workflows`` is set: its claim of the log, and any error in it
    (another driver claimed the id meanwhile), come out of the ref. A resume, or a new workflow
    with that limit, waits for the manager's answer, so a full queue or a workflow running
    elsewhere is raised here, as 2.47 raised them.

    Args:
        env_values: what the recorded runtime env leaves out (secrets), for the run's tasks.
        tail: the new log's tail token (see :func:`_submit`).
    """
    ctx = context()
    if submission is not None and ctx.manager_limits.get("max_pending_workflows") is None:
        manager = _manager_client.live_manager(ctx, ctx.shard_for(workflow_id))
        ref = _manager_client.retried(manager.run).remote(workflow_id, submission, env_values, tail)
        ctx.handed_over.sent(workflow_id)
        return ref
    _manager_client.drive(ctx, "start", workflow_id, submission, env_values, tail)
    return _manager_client.retried(ctx.manager_for(workflow_id).wait_output).remote(workflow_id)


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
    return _start(workflow_id, None, _env_values_for_resume(workflow_id, state))


def _env_values_for_resume(workflow_id: str, state: WorkflowState) -> dict:
    """What the recorded runtime env left out (env var values, URL credentials), from this
    driver's job runtime env, else (env vars) its own environment.

    What neither has is left to the cluster: tasks inherit the env vars of the job that
    started the manager (Ray merges env_vars into children), which on the cluster that ran
    the workflow are the ones it had. A warning names them.
    """
    recorded = state.submission.runtime_env if state.submission is not None else None
    values, missing = runtime_envs.supplied(recorded, _runtime_env(), os.environ)
    if missing:
        logger.warning(
            "resuming workflow %s: its runtime_env's %s %s not stored in its log (secrets never are) "
            "and this driver has none, so its tasks get what the cluster's manager was started with, "
            "if anything; supply them in ray.init(runtime_env=...) or, for env vars, this driver's "
            "environment", workflow_id, ", ".join(p.removeprefix("env_vars.") for p in missing),
            "is" if len(missing) == 1 else "are")
    return values


def resume(workflow_id: str) -> Any:
    """Continue a workflow from its last durable point and return its output."""
    return _unwrap(resume_async(workflow_id), workflow_id)


def get_output_async(workflow_id: str, *, task_id: str | None = None) -> ray.ObjectRef:
    """An ObjectRef to the workflow's (or one task's) output; it waits while the workflow runs.

    Errors (failed, canceled, not resumable) are raised by ``ray.get`` of the ref, as in 2.47.

    Raises:
        WorkflowNotFoundError: no such workflow (at once).
    """
    found = _output_or_error(workflow_id, task_id)
    if isinstance(found, ray.ObjectRef):
        return found
    if isinstance(found, BaseException):
        return _raise_remote.remote(found)
    return ray.put(found[0])


def get_output(workflow_id: str, *, task_id: str | None = None) -> Any:
    """The workflow's (or one task's) output; waits if the workflow is still running.

    Raises:
        WorkflowNotFoundError: no such workflow. ValueError: no such task, or no stored output.
        WorkflowExecutionError / WorkflowCancellationError / WorkflowNotResumableError: it
            failed, was canceled, or has no output and nobody runs it (each also a RayTaskError).
    """
    found = _output_or_error(workflow_id, task_id)
    if isinstance(found, ray.ObjectRef):
        return _unwrap(found, workflow_id, task_id)
    if isinstance(found, WorkflowError):
        raise as_ray_task_error(found)
    if isinstance(found, BaseException):
        raise found
    return found[0]


def _output_or_error(workflow_id: str, task_id: str | None) -> ray.ObjectRef | BaseException | tuple[Any]:
    """A ref to wait on (the manager drives it), the error that explains a missing output,
    or ``(value,)`` from the log."""
    state = _existing_state(workflow_id)
    if task_id is not None and _task_done(state, task_id):
        pass  # a finished task's output is in the log, running workflow or not
    elif state.status not in (WorkflowStatus.SUCCESSFUL, WorkflowStatus.CANCELED):
        ctx = context()
        if ctx.handed_over.in_flight(workflow_id, state):  # the manager may not have it yet
            return _manager_client.retried(ctx.manager_for(workflow_id).wait_output).remote(
                workflow_id, task_id, True)
        if _manager_client.ask(ctx, "live_status", workflow_id) is not None:
            return _manager_client.retried(ctx.manager_for(workflow_id).wait_output).remote(workflow_id, task_id)
        if state.status is WorkflowStatus.PENDING and state.submission is not None and state.submission.owner:
            # Handed to a manager that never got it (its driver died first): the manager takes
            # it on once that hand-over is overdue, if it is its own; else it says why not.
            return _manager_client.retried(ctx.manager_for(workflow_id).wait_output).remote(workflow_id, task_id)
        state = _existing_state(workflow_id)  # it may have ended between the read and the answer
        if status_of(state.status, None, _lease_of(state), asked_seat=ctx.seats) is WorkflowStatus.RUNNING:
            return _manager_client.retried(ctx.manager_for(workflow_id).wait_output).remote(workflow_id, task_id)  # another cluster
    try:
        return (run_sync(output_from_state(context().storage, workflow_id, state, task_id)),)
    except (WorkflowError, ValueError) as exc:
        return exc


def _lease_of(state: WorkflowState):
    return run_sync(read_lease(context().storage, state.owner)) if needs_lease(state) else None


def _task_done(state: WorkflowState, task_id: str) -> bool:
    task = state.tasks.get(task_id)
    return task is not None and task.status is TaskStatus.SUCCESSFUL


@ray.remote(num_cpus=0)
def _raise_remote(error: BaseException) -> None:
    raise error


def get_status(workflow_id: str) -> WorkflowStatus:
    """The workflow's status, from its log; RUNNING with no live driver reads RESUMABLE."""
    return _live_status(workflow_id, _existing_state(workflow_id))


def _live_status(workflow_id: str, state: WorkflowState) -> WorkflowStatus:
    """The status by the one rule (engine.store._status): the log, this cluster's manager, and
    the owner's lease (so a workflow another cluster drives reads RUNNING here too)."""
    if state.status in (WorkflowStatus.SUCCESSFUL, WorkflowStatus.CANCELED):
        return state.status
    ctx = context()
    if ctx.handed_over.in_flight(workflow_id, state):  # sent by this process: wait for it to arrive
        live = _manager_client.ask(ctx, "live_status", workflow_id, True)
        if live is None:  # it ended meanwhile (or never arrived): the log says which
            state = _existing_state(workflow_id)
            if state.status in (WorkflowStatus.SUCCESSFUL, WorkflowStatus.CANCELED):
                return state.status
    else:
        live = _manager_client.ask(ctx, "live_status", workflow_id)
    lease = None
    if live is None:
        lease = _lease_of(state)
    return status_of(state.status, live, lease, asked_seat=ctx.seats)


def get_metadata(workflow_id: str, task_id: str | None = None) -> dict[str, Any]:
    """ray.workflow 2.47's metadata shape, for the workflow or one of its tasks.

    Workflow: ``{"status", "user_metadata", "stats": {"start_time", "end_time"}}`` plus
    ``runtime_env``, ``packages``, ``ray_version``, ``engine_version``. Task: ``{"task_id",
    "task_options": {"task_type", "max_retries", "catch_exceptions", "retry_exceptions",
    "checkpoint", "ray_options"}, "user_metadata", "workflow_refs", "stats"}`` plus ``status``
    and ``attempts``. Times are Unix seconds. As in 2.47, ``stats`` has ``start_time`` once it
    ran (a workflow's: its latest run's start) and ``end_time`` only once it ended (here a
    canceled workflow's too; 2.47 left that out).

    Raises:
        WorkflowNotFoundError: no such workflow. ValueError: no such task in it.
    """
    state = _existing_state(workflow_id)
    if task_id is None:
        return workflow_metadata(state, _live_status(workflow_id, state))
    task = state.tasks.get(task_id)
    if task is None:
        return _unscheduled_task_metadata(workflow_id, state, task_id)
    ended = task.status in (TaskStatus.SUCCESSFUL, TaskStatus.FAILED)
    return {
        "task_id": task_id,
        "task_options": _task_options_247(runtime_envs.recorded_task_options(task.task_options)),
        "user_metadata": dict(task.user_metadata),
        "workflow_refs": list(task.deps),
        "stats": _stats(task.started_at, task.ended_at if ended else None),
        "status": str(task.status),
        "attempts": task.attempt,
    }


def _unscheduled_task_metadata(workflow_id: str, state: WorkflowState, task_id: str) -> dict[str, Any]:
    """A task of the submitted DAG that no run has scheduled yet (run_async returns before the
    manager's claim; a downstream task waits for its inputs): its metadata from the DAG, as
    2.47 had every task's from the submission on, with no stats yet.

    Raises:
        ValueError: the submitted DAG has no such task either (a continuation's tasks are known
            only once the task that returns it has run).
    """
    spec = None
    if state.submission is not None:
        graph = WorkflowGraph.from_bytes(run_sync(_payloads.load_bytes(context().storage, workflow_id,
                                                                       state.submission.dag)))
        spec = graph.tasks.get(task_id)
    if spec is None:
        raise ValueError(f"workflow {workflow_id!r} has no task {task_id!r}")
    return {
        "task_id": task_id,
        "task_options": _task_options_247(runtime_envs.recorded_task_options(spec.recorded_options())),
        "user_metadata": dict(spec.options.metadata),
        "workflow_refs": list(spec.deps),
        "stats": {},
        "status": "PENDING",
        "attempts": 0,
    }


_ENDED = (WorkflowStatus.SUCCESSFUL, WorkflowStatus.FAILED, WorkflowStatus.CANCELED)
_WORKFLOW_OPTION_KEYS = ("max_retries", "catch_exceptions", "retry_exceptions", "checkpoint")


def _task_options_247(recorded: dict[str, Any]) -> dict[str, Any]:
    """2.47's task_options shape; logs of ray-durable 0.1 recorded Ray options beside ours."""
    if "ray_options" in recorded:
        return dict(recorded)
    options = {"task_type": "FUNCTION", **{k: recorded[k] for k in _WORKFLOW_OPTION_KEYS if k in recorded}}
    options["ray_options"] = {k: v for k, v in recorded.items() if k not in _WORKFLOW_OPTION_KEYS}
    return options


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
        args = [refs[spec.deps[i]] for i in spec.passed_by_value()]
        if spec.ref_deps:
            args.append([refs[spec.deps[i]] for i in spec.ref_deps])
        refs[spec.task_id] = _worker.remote_run_plain.options(**spec.ray_options).remote(
            graph.functions[spec.fn_key], spec.call, spec.passed_by_value(), spec.ref_deps, *args)
    return ray.get(refs[graph.output_task_id])
