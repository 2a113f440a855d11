"""Fork a workflow from any task, and check a DAG against a workflow's log.

A fork is a new workflow whose log starts with its source's durable completions of every
task that is not ``from_task`` or downstream of it (``task.forked`` events, after a
``workflow.submitted`` that records the origin), then runs the rest like any workflow, with
the current code or a DAG given to it. It follows DBOS's ``fork_workflow`` (a new id, the
source's checkpoints before the chosen step copied into it, the rest re-run with the code
deployed now) and Temporal's reset (the source stays as it is, the new run says where it came
from), with Inngest's "rerun from a step with new input" as ``dag=``. Outputs are shared with
the source, not copied: see :mod:`engine.store._forks` for how ``delete`` keeps them.

``check`` applies the reuse rule a fork applies (:mod:`engine.graph._reuse`) and runs nothing.
"""

from __future__ import annotations

from typing import Any

import ray
from ray.dag import DAGNode

from replay import ForkOrigin, PayloadRef, TaskForked, WorkflowState, encode_event, load_state
from storage_backends import AppendConflictError, Storage

from .._names import validate_workflow_id
from ..exceptions import WorkflowForkError, WorkflowNotFoundError, WorkflowQueueFullError
from ..graph._build import WorkflowGraph, build_graph, reads_input
from ..graph._reuse import ReusePlan, plan_reuse
from ..store import _forks, _payloads
from ..store._offline import delete_from_storage
from ..store._sync import run_sync
from ._init import context
from ._workflows import _deploy_http_provider, _start, _unwrap, dag_payload, submission_event


def fork(source_id: str, new_workflow_id: str, from_task: str | None = None, dag: DAGNode | None = None) -> Any:
    """Fork ``source_id`` into ``new_workflow_id``, run the fork to its end, return its output.

    Args:
        source_id: the workflow to fork, in any status (a RUNNING one is forked from its durable
            prefix: what its log holds now).
        new_workflow_id: the fork's id; must not exist yet.
        from_task: re-run this task and everything downstream of it even though they completed
            in the source (a task inside a continuation's sub-DAG stands for the top-level task
            that continued into it). None: re-run only what had not completed (for a FAILED
            source, its failed task and what follows it).
        dag: the DAG the fork runs (new code, new arguments); None: the source's own. Its tasks
            reuse the source's completions by the rule :func:`check` reports.

    Returns:
        the fork's output, as :func:`engine.run` returns it.

    Raises:
        WorkflowNotFoundError: no workflow ``source_id``.
        WorkflowForkError: ``new_workflow_id`` exists, ``from_task`` is unknown or never ran,
            or is not a task of ``dag``; nothing is written.
        WorkflowExecutionError: the fork failed (as :func:`engine.run`).
        WorkflowQueueFullError: ``max_pending_workflows`` are queued (the fork is not kept).
    """
    return _unwrap(fork_async(source_id, new_workflow_id, from_task, dag), new_workflow_id)


def fork_async(source_id: str, new_workflow_id: str, from_task: str | None = None,
               dag: DAGNode | None = None) -> ray.ObjectRef:
    """:func:`fork`, returning an ObjectRef to the fork's output once the fork is written and started."""
    storage = context().storage
    new_workflow_id = validate_workflow_id(new_workflow_id)
    state, stored, graph = _load(storage, source_id, dag)
    if new_workflow_id == source_id:
        raise WorkflowForkError(source_id, "the fork needs a new workflow id, not the source's own")
    if run_sync(storage.exists(new_workflow_id)):
        raise WorkflowForkError(source_id, f"a workflow {new_workflow_id!r} already exists; pick another "
                                           "id, or delete that workflow first")
    from_task = _fork_point(state, graph, from_task, dag is not None)
    plan = plan_reuse(graph, stored, state, from_task)
    origin = ForkOrigin(workflow_id=source_id, seq=state.last_seq, from_task=from_task, new_dag=dag is not None)
    dag_ref = dag_payload(graph, new_workflow_id)
    if dag_ref is None:
        raise WorkflowForkError(source_id, f"a workflow {new_workflow_id!r} was created meanwhile; pick another id")
    submitted = state.submission
    event, env_values = submission_event(new_workflow_id, dag_ref, dict(submitted.user_metadata),
                                         None if origin.new_dag else submitted.inputs, origin)
    forked, shared = run_sync(_forked_events(storage, state, plan, origin, event.ts))
    run_sync(_write_fork(storage, source_id, new_workflow_id, [event, *forked], shared))
    if any(spec.wait is not None and spec.wait.kind == "mailbox" for spec in graph.tasks.values()):
        _deploy_http_provider()
    try:
        return _start(new_workflow_id, None, env_values)
    except WorkflowQueueFullError:  # refused: the fork never existed (and shares nothing)
        run_sync(delete_from_storage(storage, new_workflow_id, context().storage_url))
        raise


def check(dag: DAGNode, workflow_id: str, from_task: str | None = None) -> ReusePlan:
    """Say, without running anything, which completed tasks of ``workflow_id``'s log a fork with
    ``dag`` would reuse, which tasks it would run and why (with the DAG the workflow was
    submitted with, this is what ``resume`` does).

    Returns:
        a :class:`engine.graph._reuse.ReusePlan`: ``reused``, ``rerun`` (task id -> reason:
        "function renamed: a -> b", "arguments changed", "not in the log", ...), ``gone``
        (completed tasks no task of ``dag`` has), ``mismatches`` and ``ok`` (no completed task
        would run again or be dropped, apart from ``from_task`` and what follows it).

    Raises:
        WorkflowNotFoundError / WorkflowForkError / TypeError: as :func:`fork`.
    """
    return run_sync(check_in_storage(context().storage, dag, workflow_id, from_task))


async def check_in_storage(storage: Storage, dag: Any, workflow_id: str, from_task: str | None = None) -> ReusePlan:
    """:func:`check` against ``storage`` (the CLI's; no Ray needed)."""
    state = await load_state(storage, validate_workflow_id(workflow_id))
    if state.status is None:
        raise WorkflowNotFoundError(workflow_id, getattr(storage, "url", ""))
    stored = WorkflowGraph.from_bytes(await _payloads.load_bytes(storage, workflow_id, state.submission.dag))
    graph = _graph_of(dag, state)
    return plan_reuse(graph, stored, state, _fork_point(state, graph, from_task, True))


def _load(storage: Storage, source_id: str, dag: Any) -> tuple[WorkflowState, WorkflowGraph, WorkflowGraph]:
    state = run_sync(load_state(storage, validate_workflow_id(source_id)))
    if state.status is None:
        raise WorkflowNotFoundError(source_id, context().storage_url)
    stored = WorkflowGraph.from_bytes(run_sync(_payloads.load_bytes(storage, source_id, state.submission.dag)))
    return state, stored, stored if dag is None else _graph_of(dag, state)


def _graph_of(dag: Any, state: WorkflowState) -> WorkflowGraph:
    """The graph of a DAG given to fork or check; an InputNode reads the source's recorded inputs."""
    if not isinstance(dag, DAGNode):
        raise TypeError(f"dag must be a DAG made with f.bind(...), got {type(dag).__name__}")
    inputs = None
    if reads_input(dag):
        recorded = state.submission.inputs
        if recorded is None or recorded.inline is None:
            raise WorkflowForkError(state.workflow_id, "the DAG reads an InputNode, but the source's inputs "
                                                       "were not recorded inline (too large); bind the values "
                                                       "into the DAG instead")
        inputs = _payloads.loads(recorded.inline)
    return build_graph(dag, inputs=inputs)


def _fork_point(state: WorkflowState, graph: WorkflowGraph, from_task: str | None, new_dag: bool) -> str | None:
    """``from_task`` checked, as the top-level task of ``graph`` the fork re-runs from."""
    if from_task is None:
        return None
    wid = state.workflow_id
    task = state.tasks.get(from_task)
    if task is None:
        if from_task in graph.tasks:
            raise WorkflowForkError(wid, f"task {from_task!r} never started in it, so there is nothing to re-run "
                                         "from there; fork without from_task (tasks that had not completed run "
                                         "anyway)")
        known = ", ".join(sorted(state.tasks)[:20]) or "none"
        raise WorkflowForkError(wid, f"it has no task {from_task!r} (its tasks: {known}); "
                                     "`ray-durable show` lists them")
    if task.status.value == "SCHEDULED" and not task.spans and not task.errors:
        raise WorkflowForkError(wid, f"task {from_task!r} has no recorded attempt (it never started, or its "
                                     "first attempt is still running), so there is nothing to re-run from "
                                     "there; fork without from_task (it runs anyway)")
    top = task
    while top.parent_task_id is not None and top.parent_task_id in state.tasks:
        top = state.tasks[top.parent_task_id]
    if top.task_id not in graph.tasks:
        where = "the DAG given to fork (dag=...)" if new_dag else "the workflow's DAG"
        raise WorkflowForkError(wid, f"task {top.task_id!r} is not a task of {where}; its tasks: "
                                     + ", ".join(list(graph.tasks)[:20]))
    return top.task_id


async def _forked_events(storage: Storage, state: WorkflowState, plan: ReusePlan, origin: ForkOrigin,
                         now: float) -> tuple[list[TaskForked], dict[str, set[str]]]:
    """The fork's ``task.forked`` events (at ``now``, its submission's time), and the blobs it
    shares, by owner."""
    source = state.workflow_id
    events = []
    shared: dict[str, set[str]] = {}
    owners: dict[str | None, str] = {}
    for task_id in plan.reused + plan.inner:
        task = state.tasks[task_id]
        output = task.output
        if output.blob is not None:
            if output.log not in owners:
                owners[output.log] = await _forks.owner_of(storage, output.log, source)
            owner = owners[output.log]
            output = PayloadRef(size=output.size, digest=output.digest, type_name=output.type_name,
                                codec=output.codec, blob=output.blob, log=owner)
            shared.setdefault(owner, set()).add(output.blob)
        events.append(TaskForked(ts=now, task_id=task_id, name=task.name, output=output, source_seq=origin.seq,
                                 task_options=task.task_options, user_metadata=task.user_metadata,
                                 parent_task_id=task.parent_task_id, deps=task.deps))
    return events, shared


async def _write_fork(storage: Storage, source: str, fork_id: str, events: list, shared: dict[str, set[str]]) -> None:
    """Register the fork with the owners of the outputs it shares, then write its log whole, in one
    compare-and-append at seq 0 (so a fork is all there or not at all)."""
    for owner, blobs in sorted(shared.items()):
        await _forks.register(storage, owner, fork_id, sorted(blobs))
    try:
        await storage.append(fork_id, [encode_event(e) for e in events], 0)
    except AppendConflictError:
        for owner in shared:
            await _forks.unregister(storage, owner, fork_id)
        raise WorkflowForkError(source, f"a workflow {fork_id!r} was created meanwhile; pick another id") from None
