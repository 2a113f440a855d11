"""Driving one workflow to its end, inside the management actor.

A :class:`WorkflowRun` folds nothing itself: its state is the fold of the log,
kept current by the :class:`LogWriter` as it queues events. It submits every
task whose dependencies have (or will have) a value as a Ray task, pipelined
like a plain Ray DAG, and records each outcome. A task whose dependency
turned out not to have a value (it failed, or continued into a sub-DAG) is
*deferred*: it re-runs once that value exists. Retries, continuations and
cancellation are all handled here; nothing else decides what runs next.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import defaultdict, deque
from dataclasses import dataclass, field
from collections.abc import Awaitable, Sequence
from typing import Any, Protocol

import ray
from ray.exceptions import GetTimeoutError, RayTaskError, TaskCancelledError

from replay import (
    DEFAULT_SNAPSHOT_EVERY,
    PayloadRef,
    TaskCaught,
    TaskCompleted,
    TaskContinued,
    TaskFailed,
    TaskRetried,
    TaskScheduled,
    TaskStarted,
    TaskStatus,
    WorkflowCanceled,
    WorkflowFailed,
    WorkflowRunStarted,
    WorkflowState,
    WorkflowStatus,
    WorkflowSucceeded,
    runtime_envs,
)
from storage_backends import AppendConflictError, Storage

from ..exceptions import WorkflowCancellationError, WorkflowError, WorkflowExecutionError, WorkflowRunningError
from ..graph._build import TaskSpec, WorkflowGraph, unique_ids
from ..store import _payloads
from ..store._offline import drop_outputs
from ..store._spec import StorageSpec
from ._arrivals import Arrivals
from ._log_writer import LogWriter
from ._storage_faults import storage_interruption
from ._waits import Waits
from ._worker import Outcome, RunContext, TaskCall, decode_outcome, remote_run_task

OK, CONTINUED, FAILED, DEFERRED = "ok", "continued", "failed", "deferred"
logger = logging.getLogger(__name__)
# A run that starts with thousands of ready tasks (a wide fan-out) hands the event loop back
# every this many: the manager's other runs and its lease renewal must not wait ~0.3 ms per Ray
# submission times 100,000 (a 100,000-task fan-out stalled the loop past the lease, and the
# manager fenced its own runs).
_YIELD_EVERY = 256


class StatusIndex(Protocol):
    """What a run tells the derived status index (:class:`engine._index.IndexWriter`)."""

    def claim(self, workflow_id: str, seq: int) -> Awaitable[None]: ...

    def record(self, workflow_id: str, status: WorkflowStatus, seq: int) -> Awaitable[None]: ...


@dataclass(eq=False)
class Source:
    """Where a task's value comes from: a submitted attempt, or a checkpoint loaded on resume."""

    task_id: str
    value_ref: Any
    settled: asyncio.Future  # result: OK, CONTINUED, FAILED or DEFERRED
    deps: list[Source] = field(default_factory=list)
    meta_ref: Any = None
    attempt: int = 0


class WorkflowRun:
    def __init__(self, storage: Storage, spec: StorageSpec, state: WorkflowState,
                 manager_name: str, index: StatusIndex, run_id: str | None = None, owner: Any = None,
                 env_values: dict | None = None, snapshot_every: int = DEFAULT_SNAPSHOT_EVERY,
                 unwritten: Sequence[bytes] = ()):
        """``unwritten``: the records ``state`` was folded from that nobody appended yet (a
        submission handed over unwritten): the claim's append writes them first."""
        self.storage = storage
        self.spec = spec  # how other processes open the storage (the listener actor, the HTTP provider)
        self.workflow_id = state.workflow_id
        self.state = state
        self.writer = LogWriter(storage, self.workflow_id, state, snapshot_every, unwritten)
        self.manager_name = manager_name
        self.index = index
        self.owner = owner  # engine.runtime._recovery.Identity of the manager driving it, if any
        submitted = state.submission
        # As recorded (no secret values), completed with the values the starting driver gave.
        self.runtime_env = runtime_envs.completed(submitted.runtime_env if submitted else None, env_values)
        self.run_id = run_id or uuid.uuid4().hex[:12]
        self.context = RunContext(self.workflow_id, self.run_id, spec, manager_name).to_bytes()
        self.tasks: dict[str, TaskSpec] = {}
        self.used_ids: set[str] = set(state.tasks)  # every task id the workflow has or had
        self.abandoned: set[str] = set()  # catchers whose sub-DAG's outcome no longer matters
        self.functions: dict[str, bytes] = {}
        self.output_task_id = ""
        self.dependents: dict[str, list[str]] = defaultdict(list)
        self.alias: dict[str, str] = {}  # continued task -> its sub-DAG's output task
        self.parent_of: dict[str, str] = {}  # task of a sub-DAG -> the task that continued into it
        self.sources: dict[str, Source] = {}
        self.waiting: set[str] = set()  # tasks that need (re)submission
        self._unusable_from: dict[str, int] = {}  # waiting task -> its first dependency not usable yet
        self.scheduled_here: set[str] = set()  # tasks this run appended a scheduled event for
        self.inflight: dict[str, Source] = {}
        self.attempts_this_run: dict[str, int] = defaultdict(int)
        self.result: asyncio.Future = asyncio.get_running_loop().create_future()
        self.arrivals = Arrivals(asyncio.get_running_loop(), self._outcome_arrived)
        self.result.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._remotes: dict[Any, Any] = {}  # Ray options -> remote_run_task with them
        self.waits = Waits(self)  # timers and event waits: on this actor, never Ray tasks
        self.finished = False

    # --- start ----------------------------------------------------------------

    async def start(self) -> None:
        """Load what the log says is done, claim the log, and submit what is ready.

        The claim (the run-started event) and the scheduled events of the tasks that can
        start at once are one append, and those tasks are launched once it is durable:
        one append per run less than a claim of its own, and the first tasks never run
        before the log has them scheduled. Nothing is written before the claim, so a run
        that cannot load (a checkpoint gone, say) leaves the log and the index as they were.
        """
        submission = self.state.submission
        graph = WorkflowGraph.from_bytes(
            await _payloads.load_bytes(self.storage, self.workflow_id, submission.dag))
        self.output_task_id = graph.output_task_id
        self._merge(graph)
        await self._load_continuations()
        await self._load_checkpoints()
        self.waiting = {t for t in self.tasks if not self._done(t)}
        await self._claim_if_failed("resumed")
        owner = self.owner
        self.writer.add(WorkflowRunStarted(
            ts=time.time(), run_id=self.run_id, resumed=len(self.state.run_ids) > 0,
            owner=owner.owner if owner else "", cluster=owner.cluster if owner else "",
            application=owner.application if owner else ""))
        ready = []
        for task_id in self.tasks:
            deps = self._usable_deps(task_id) if task_id in self.waiting else None
            if deps is not None:
                ready.append((task_id, deps))
        for i, (task_id, _deps) in enumerate(ready):
            self._record_scheduled(task_id)
            if i % _YIELD_EVERY == _YIELD_EVERY - 1:
                await asyncio.sleep(0)  # see _YIELD_EVERY
        await self.writer.drain()
        # Claimed under this manager's lease: nobody else writes to or deletes the log until the
        # run ends (a cancel from elsewhere is still a conflict), so the storage need not prove
        # its cached tail before each append (on S3 a HEAD per append).
        self.storage.hold(self.workflow_id)
        self.result.add_done_callback(lambda _f: self.storage.release(self.workflow_id))
        if self.finished:
            return
        self.waiting.difference_update(task_id for task_id, _ in ready)  # (outcomes may arrive meanwhile)
        for i, (task_id, deps) in enumerate(ready):
            if self.finished:  # fenced or canceled while launching
                return
            self._launch(task_id, deps)
            if i % _YIELD_EVERY == _YIELD_EVERY - 1:
                await asyncio.sleep(0)
        self._advance(list(dict.fromkeys(d for t, _ in ready for d in self.dependents.get(t, ()))))
        self._check_finished()

    async def _claim_if_failed(self, action: str) -> None:
        """Before the next event takes a FAILED log out of FAILED, claim its seq in the status
        index, durably: the index trusts FAILED, so it must never outlive the log's FAILED."""
        if self.state.status is not WorkflowStatus.FAILED:
            return
        try:
            await self.index.claim(self.workflow_id, self.state.next_seq)
        except Exception as exc:
            raise WorkflowError(
                f"workflow {self.workflow_id!r} was not {action}: recording that in the status index "
                f"failed ({type(exc).__name__}: {exc}); nothing was appended to its log, try again"
            ) from exc

    def _merge(self, graph: WorkflowGraph) -> None:
        self.tasks.update(graph.tasks)
        self.used_ids.update(graph.tasks)
        self.functions.update(graph.functions)
        for spec in graph.tasks.values():
            for dep in spec.deps:
                self.dependents[dep].append(spec.task_id)

    async def _load_continuations(self) -> None:
        """On resume: the sub-DAGs of tasks that continued but whose sub-DAG has not finished."""
        loaded: set[str] = set()
        while True:
            # Only those of tasks this run has (a sub-DAG abandoned by a caught failure is not).
            pending = [t for t in self.state.tasks.values() if t.status is TaskStatus.CONTINUED
                       and t.task_id in self.tasks and t.task_id not in loaded]
            if not pending:
                return
            for task in pending:
                loaded.add(task.task_id)
                data = await _payloads.load_bytes(self.storage, self.workflow_id, task.continuation)
                graph = WorkflowGraph.from_bytes(data).renamed(task.continuation_task_ids)
                self._attach_continuation(task.task_id, graph)

    def _attach_continuation(self, task_id: str, graph: WorkflowGraph) -> None:
        self._merge(graph)
        self.alias[task_id] = graph.output_task_id
        self.parent_of.update(dict.fromkeys(graph.tasks, task_id))
        self.dependents[graph.output_task_id].extend(self.dependents.get(task_id, []))

    async def _load_checkpoints(self) -> None:
        """On resume: put the checkpointed outputs that pending tasks (or the result) need into Ray."""
        needed = {self._resolve(self.output_task_id)}
        for spec in self.tasks.values():
            if not self._done(spec.task_id):
                needed.update(self._resolve(d) for d in spec.deps)
        loop = asyncio.get_running_loop()

        async def load(task_id: str) -> None:
            task = self.state.tasks[task_id]
            value = await _payloads.load_value(self.storage, self.workflow_id, task.output)
            settled = loop.create_future()
            settled.set_result(OK)
            self.sources[task_id] = Source(task_id, ray.put(value), settled)

        await asyncio.gather(*(load(t) for t in needed if self._has_checkpoint(t)))

    # --- bookkeeping ----------------------------------------------------------

    def _resolve(self, task_id: str) -> str:
        while task_id in self.alias:
            task_id = self.alias[task_id]
        return task_id

    def _done(self, task_id: str) -> bool:
        task = self.state.tasks.get(task_id)
        if task is None:
            return False
        if task.status is TaskStatus.CONTINUED:
            return True  # its sub-DAG's tasks carry on in its place
        return task.status is TaskStatus.SUCCESSFUL and self._has_checkpoint(task_id)

    def _has_checkpoint(self, task_id: str) -> bool:
        task = self.state.tasks.get(task_id)
        return (task is not None and task.status is TaskStatus.SUCCESSFUL and task.output is not None
                and task.output.codec != "none")

    def _source(self, task_id: str) -> Source | None:
        return self.sources.get(self._resolve(task_id))

    # --- submitting -------------------------------------------------------------

    def _advance(self, candidates: list[str]) -> None:
        """Submit every waiting task among ``candidates`` whose dependencies have a usable source,
        then the dependents of what was submitted (pipelining, as a plain Ray DAG does).

        A FIFO queue: candidates come in topological order, so a fan-in task is
        checked once its inputs were submitted, not once per input.
        """
        work = deque(candidates)
        while work and not self.finished:
            task_id = work.popleft()
            if task_id not in self.waiting:
                continue
            deps = self._usable_deps(task_id)
            if deps is not None:
                self.waiting.discard(task_id)
                self._record_scheduled(task_id)
                self._launch(task_id, deps)
                work.extend(self.dependents.get(task_id, ()))

    def _usable_deps(self, task_id: str) -> list[Source] | None:
        """The sources of the task's dependencies, if each has a value or one on its way; else None.

        A fan-in is asked again each time one of its inputs is launched or completes. The scan
        resumes at the first dependency that was not usable last time (``_unusable_from``), so
        a 100,000-input fan-in costs linear time in all, not quadratic; once every dependency
        has been usable, the ones before the cursor are taken (and checked) again.
        """
        spec = self.tasks[task_id]
        start = self._unusable_from.get(task_id, 0)
        deps = []
        for index in range(start, len(spec.deps)):
            source = self._usable_dep(spec, index)
            if source is None:
                self._unusable_from[task_id] = index
                return None
            deps.append(source)
        head = []  # usable when last looked at: taken again, and checked again
        for index in range(start):
            source = self._usable_dep(spec, index)
            if source is None:  # it failed meanwhile
                self._unusable_from[task_id] = index
                return None
            head.append(source)
        self._unusable_from.pop(task_id, None)
        return head + deps if head else deps

    def _usable_dep(self, spec: Any, index: int) -> Source | None:
        """The source of dependency ``index`` of ``spec`` if it has a value or one on its way.

        A dependency passed as an ObjectRef (nested in a container) must have its value already:
        the worker sees only the ref, so it could not refuse a value that never comes.
        """
        source = self._source(spec.deps[index])
        if source is None:
            return None
        if source.settled.done():
            return source if source.settled.result() == OK else None
        if index in spec.ref_deps or source.value_ref is None:  # (a wait has no value until it ends)
            return None
        return source

    def _record_scheduled(self, task_id: str) -> None:
        """Queue the task's scheduled event for its next attempt.

        Not when this run has it scheduled already (a deferred task going again, or a retry
        whose attempt the retried event set): that attempt never ran the function. A task
        an earlier run had scheduled gets a new attempt, since that run may have started it,
        and an attempt's number names its output blob.
        """
        spec = self.tasks[task_id]
        task = self.state.tasks.get(task_id)
        if task is not None and task.status is TaskStatus.SCHEDULED and task_id in self.scheduled_here:
            return
        attempt = 1 if task is None else task.attempt + (task.status is not TaskStatus.SUCCESSFUL)
        self.writer.add(TaskScheduled(
            ts=time.time(), task_id=task_id, name=spec.name, attempt=attempt,
            task_options=spec.recorded_options(), user_metadata=spec.options.metadata,
            parent_task_id=self.parent_of.get(task_id), deps=spec.deps))
        self.scheduled_here.add(task_id)

    def _launch(self, task_id: str, deps: list[Source]) -> None:
        """Submit the task's scheduled attempt as a Ray task and watch for its outcome."""
        spec = self.tasks[task_id]
        attempt = self.state.tasks[task_id].attempt
        if spec.wait is not None:
            source = Source(task_id, None, asyncio.get_running_loop().create_future(), deps, None, attempt)
            self.sources[task_id] = source
            self.waits.start(source, spec.wait)
            return
        by_value = spec.passed_by_value()
        call = TaskCall(self.context, task_id, attempt, spec.fn_key, self.functions[spec.fn_key], spec.call,
                        spec.options.catch_exceptions, spec.options.checkpoint, by_value, spec.ref_deps)
        args = [deps[i].value_ref for i in by_value]
        if spec.ref_deps:
            args.append([deps[i].value_ref for i in spec.ref_deps])
        value_ref, meta_ref = self._remote_for(spec).remote(call.to_bytes(), *args)
        source = Source(task_id, value_ref, asyncio.get_running_loop().create_future(), deps, meta_ref, attempt)
        self.sources[task_id] = source
        self.inflight[task_id] = source
        self.arrivals.watch(source, meta_ref)

    def _remote_for(self, spec: TaskSpec) -> Any:
        options = spec.ray_options
        if self.runtime_env and "runtime_env" not in options:
            # The environment recorded at submission, so a resume on another cluster,
            # or by a manager another job created, runs tasks where they were meant to run.
            options = {**options, "runtime_env": self.runtime_env}
        if "name" not in options:  # for the dashboard, `ray list tasks` and log prefixes
            # (not the workflow id too: Ray keeps state per task name in this process for good,
            # ~30 KB per workflow with a name each; see benchmarks/throughput.py's manager RSS)
            options = {**options, "name": spec.name.rpartition(".")[2]}
        key = tuple(sorted((k, repr(v)) for k, v in options.items()))
        remote = self._remotes.get(key)
        if remote is None:
            remote = self._remotes[key] = remote_run_task.options(**options, num_returns=2)
        return remote

    # --- outcomes ---------------------------------------------------------------

    def on_started(self, task_id: str, attempt: int, ts: float, pid: int, node: str) -> None:
        """A worker reports that an attempt began (it may arrive after the outcome; then it is moot)."""
        task = self.state.tasks.get(task_id)
        if self.finished or task is None or task.status is not TaskStatus.SCHEDULED or task.attempt != attempt:
            return
        self.writer.add(TaskStarted(ts=ts, task_id=task_id, attempt=attempt, node_id=node, pid=pid))

    def _outcome_arrived(self, source: Source, meta: Any, error: BaseException | None) -> None:
        """The attempt's outcome (or the error getting it) is here; settle it once its inputs are."""
        outcome = None
        if error is None:
            try:
                outcome = decode_outcome(meta)
            except Exception as exc:
                error = exc
        if all(dep.settled.done() for dep in source.deps):
            self._settle_or_finish(source, outcome, error)
        else:  # classify only once every dependency's fate is known
            asyncio.ensure_future(self._settle_after_deps(source, outcome, error))

    async def _settle_after_deps(self, source: Source, outcome: Outcome | None,
                                 error: BaseException | None) -> None:
        for dep in source.deps:
            await asyncio.shield(dep.settled)
        self._settle_or_finish(source, outcome, error)

    def _settle_or_finish(self, source: Source, outcome: Outcome | None, error: BaseException | None) -> None:
        try:
            self._settle(source, outcome, error)
        except BaseException as exc:  # a broken writer or an engine bug: end the run loudly
            self._finish_with(exc)

    def _settle(self, source: Source, outcome: Outcome | None, error: BaseException | None) -> None:
        task_id = source.task_id
        if self.inflight.get(task_id) is source:
            del self.inflight[task_id]
        if error is not None:
            _mark_handled(source.value_ref)
        if self.finished:
            source.settled.set_result(FAILED)
            return
        if any(dep.settled.result() != OK for dep in source.deps) or (
                outcome is not None and outcome.kind == "deferred"):
            source.settled.set_result(DEFERRED)
            self.sources.pop(task_id, None)
            self.waiting.add(task_id)
            self._advance([task_id])
            return
        if error is not None and storage_interruption(self.workflow_id, _cause(error)) is not None:
            self._finish_with(_cause(error))  # the worker could not checkpoint: not the task's fault
            return
        if error is not None:
            self._record_started(task_id, source.attempt, None)
            self._fail(source, _error_type(error), str(_cause(error)), "", None, True, _cause(error))
        elif outcome.kind == "completed":
            self._record_started(task_id, source.attempt, outcome)
            self.writer.add(TaskCompleted(ts=outcome.ended_at, task_id=task_id, output=outcome.output,
                                          attempt=source.attempt))
            source.settled.set_result(OK)
            self._advance(self.dependents.get(task_id, []))
            self._check_finished()
        elif outcome.kind == "continued":
            graph = WorkflowGraph.from_bytes(outcome.graph)
            ids = unique_ids(graph, self.used_ids)
            graph = graph.renamed(ids)
            self._record_started(task_id, source.attempt, outcome)
            self.writer.add(TaskContinued(ts=outcome.ended_at, task_id=task_id, dag=outcome.output,
                                          output_task_id=graph.output_task_id, attempt=source.attempt,
                                          task_ids=ids))
            source.settled.set_result(CONTINUED)
            self.sources.pop(task_id, None)
            self._attach_continuation(task_id, graph)
            if not any(self._inside(task_id, catcher) for catcher in self.abandoned):
                self.waiting.update(graph.tasks)
                self._advance(list(graph.tasks))
        else:
            self._record_started(task_id, source.attempt, outcome)
            self._fail(source, outcome.error_type, outcome.message, outcome.traceback, outcome.error,
                       outcome.retryable, None, application=True)

    def _record_started(self, task_id: str, attempt: int, outcome: Outcome | None) -> None:
        task = self.state.tasks[task_id]
        if task.status is TaskStatus.SCHEDULED and task.attempt == attempt and outcome is not None:
            self.writer.add(TaskStarted(ts=outcome.started_at, task_id=task_id, attempt=attempt,
                                        node_id=outcome.node, pid=outcome.pid))

    def _fail(self, source: Source, error_type: str, message: str, tb: str, error_ref: Any,
              retryable: bool, cause: BaseException | None, application: bool = False) -> None:
        """Record a failed attempt; then retry it, let a catching task take it, or fail the workflow."""
        task_id = source.task_id
        spec = self.tasks[task_id]
        self.writer.add(TaskFailed(ts=time.time(), task_id=task_id, error_type=error_type, message=message,
                                   traceback=tb, attempt=source.attempt, error=error_ref))
        source.settled.set_result(FAILED)
        self.sources.pop(task_id, None)
        catcher = self._catcher(task_id) if application else None
        if catcher in self.abandoned:
            return  # a task of a sub-DAG whose failure was caught already: nobody needs it
        self.attempts_this_run[task_id] += 1
        budget = spec.options.max_retries
        if retryable and (budget < 0 or self.attempts_this_run[task_id] <= budget):
            self.writer.add(TaskRetried(ts=time.time(), task_id=task_id, attempt=source.attempt + 1))
            self.waiting.add(task_id)
            self._advance([task_id])
            return
        if catcher is not None:
            self.abandoned.add(catcher)
            asyncio.ensure_future(self._catch(catcher, task_id, error_type, message, error_ref))
            return
        self.writer.add(WorkflowFailed(ts=time.time(), task_id=task_id, error_type=error_type, message=message))
        failed_seq = self.state.last_seq
        asyncio.ensure_future(self._fail_workflow(task_id, error_type, message, error_ref, cause, failed_seq))

    def _catcher(self, task_id: str) -> str | None:
        """The task that catches ``task_id``'s failure: itself, or the nearest task that continued
        into a sub-DAG holding it, with catch_exceptions (ray.workflow 2.47's lookup)."""
        while task_id is not None:
            if self.tasks[task_id].options.catch_exceptions:
                return task_id
            task_id = self.parent_of.get(task_id)
        return None

    async def _catch(self, catcher: str, failed_task_id: str, error_type: str, message: str,
                     error_ref: PayloadRef | None) -> None:
        """The catcher's value becomes ``(None, exception)``: checkpointed, then given to its dependents.

        The exception stays pickled here (the actor need not import the user's modules); the
        value unpickles it wherever it is used.
        """
        try:
            if error_ref is not None:
                data = await _payloads.load_bytes(self.storage, self.workflow_id, error_ref)
                error: Any = _payloads.Pickled(data)
            else:  # the exception could not be pickled: say what it was
                error = WorkflowExecutionError(self.workflow_id, failed_task_id, None, f"{error_type}: {message}")
            value = (None, error)
            data = _payloads.dumps(value, f"the caught error of task {failed_task_id!r}")
            task = self.state.tasks[catcher]
            name = None
            if len(data) > _payloads.INLINE_LIMIT:
                name = _payloads.blob_name("out", catcher, task.attempt)
                await self.storage.put_blob(self.workflow_id, name, data)
            output = _payloads.make_ref(data, value, name)
            output.type_name = "builtins.tuple"
        except BaseException as exc:
            self._finish_with(exc)
            return
        if self.finished:
            return
        self.writer.add(TaskCaught(ts=time.time(), task_id=catcher, failed_task_id=failed_task_id,
                                   output=output))
        settled = asyncio.get_running_loop().create_future()
        settled.set_result(OK)
        self.alias.pop(catcher, None)
        self.sources[catcher] = Source(catcher, ray.put(value), settled)
        self.waiting -= {t for t in self.waiting if self._inside(t, catcher)}
        self._advance(self.dependents.get(catcher, []))
        self._check_finished()

    def _inside(self, task_id: str, catcher: str) -> bool:
        """True if ``task_id`` belongs to the sub-DAG (at any depth) that ``catcher`` continued into."""
        parent = self.parent_of.get(task_id)
        while parent is not None:
            if parent == catcher:
                return True
            parent = self.parent_of.get(parent)
        return False

    async def _fail_workflow(self, task_id: str, error_type: str, message: str, error_ref: Any,
                             cause: BaseException | None, failed_seq: int) -> None:
        self.finished = True
        self._cancel_inflight()
        if cause is None and error_ref is not None:
            try:
                cause = await _payloads.load_value(self.storage, self.workflow_id, error_ref)
            except Exception:
                cause = None
        try:
            await self.writer.drain()
        except BaseException as exc:
            self._finish_with(exc)
            return
        await self.index.record(self.workflow_id, WorkflowStatus.FAILED, failed_seq)
        self._finish_with(WorkflowExecutionError(self.workflow_id, task_id, cause,
                                                 "" if cause is not None else f"{error_type}: {message}"))

    def _check_finished(self) -> None:
        root = self.state.tasks.get(self.output_task_id)
        if self.finished or root is None or root.status is not TaskStatus.SUCCESSFUL:
            return
        if self.state.status is WorkflowStatus.RUNNING:
            self.writer.add(WorkflowSucceeded(ts=time.time(), output=root.output))
        self.finished = True
        asyncio.ensure_future(self._succeed(self.state.last_seq))

    async def _succeed(self, succeeded_seq: int) -> None:
        try:
            await self.writer.drain()
            source = self._source(self.output_task_id)
            value = await _value(source.value_ref) if source is not None else await _payloads.load_value(
                self.storage, self.workflow_id, self.state.output)
        except BaseException as exc:
            self._finish_with(exc)
            return
        await self.index.record(self.workflow_id, WorkflowStatus.SUCCESSFUL, succeeded_seq)
        if self.state.submission is not None and self.state.submission.keep == "output":
            try:  # before the result is handed out, so whoever gets it finds only the result stored
                await drop_outputs(self.storage, self.workflow_id, self.state)
            except Exception as exc:  # the workflow succeeded all the same; a gc --keep-output finishes this
                logger.warning("workflow %s succeeded, but dropping its intermediate outputs (keep='output') "
                               "failed: %s: %s", self.workflow_id, type(exc).__name__, exc)
        if not self.result.done():
            self.result.set_result(value)

    def _finish_with(self, exc: BaseException) -> None:
        self.finished = True
        interrupted = storage_interruption(self.workflow_id, exc)
        if interrupted is None:
            self._cancel_inflight()
        else:
            # Left to end by themselves (their outcomes are ignored, a resume runs them as new
            # attempts): cancelling a whole pipelined chain at once meets Ray's cancel race (see
            # _ends_by_itself), which takes this actor down with every run it drives.
            self.inflight.clear()
        if isinstance(exc, AppendConflictError):  # our writer lost the log to another driver
            exc = WorkflowRunningError(self.workflow_id, "another driver took it over while this one ran it")
        exc = interrupted or exc
        if not self.result.done():
            self.result.set_exception(exc)

    def fence(self, reason: str) -> None:
        """Stop at once, appending nothing more: this manager may no longer hold the lease."""
        self.writer.close()
        self._finish_with(WorkflowError(
            f"workflow {self.workflow_id!r} stopped on this cluster: {reason}; it is RESUMABLE "
            "(this or another cluster takes it on once the lease allows)"))

    # --- cancel -----------------------------------------------------------------

    async def cancel(self) -> None:
        """Stop running tasks, append the canceled event, fail the result."""
        self.finished = True
        self._cancel_inflight()
        try:
            if self.state.status not in (WorkflowStatus.SUCCESSFUL, WorkflowStatus.CANCELED):
                await self._claim_if_failed("canceled")  # it failed just now, while cancel was on its way
                await self.writer.write(WorkflowCanceled(ts=time.time()))
                await self.index.record(self.workflow_id, WorkflowStatus.CANCELED, self.state.last_seq)
        finally:
            self._finish_with(WorkflowCancellationError(self.workflow_id))

    def _cancel_inflight(self) -> None:
        """Cancel the attempts still on Ray, except those that end by themselves at once, and the waits."""
        self.waits.cancel_all()
        for source in list(self.inflight.values()):
            if _ends_by_itself(source):
                continue
            try:
                ray.cancel(source.value_ref, force=True)
            except Exception:
                pass
        self.inflight.clear()


def _ends_by_itself(source: Source) -> bool:
    """True if an input of the attempt has no value (it failed or continued): the worker refuses
    to run it, so it needs no cancel. Nor must it get one: it is leaving dependency resolution
    for a worker at the very moment its input's outcome reaches us, and a cancel in that window
    makes Ray 2.60 fail the task while it is being pushed, then abort this actor (its owner)
    when the worker replies ("Tried to complete task that was not pending"). Seen once in CI,
    when a workflow failed with a task queued behind the failing one."""
    return any(dep.settled.done() and dep.settled.result() != OK for dep in source.deps)


async def _value(ref: ray.ObjectRef) -> Any:
    """The value of ``ref``: taken at once if it is in this process's store (the usual case: the
    outcome that came with it has arrived), which is cheaper than awaiting it."""
    try:
        return ray.get(ref, timeout=0)
    except GetTimeoutError:  # not here yet (a large value on another node, say)
        return await ref


def _mark_handled(value_ref: Any) -> None:
    """Take an errored attempt's value (it holds the same error as its outcome), so Ray does not
    print it as an "Unhandled error" on the console when the ref is dropped: the run has handled
    it (retried, deferred, or recorded as the task's failure)."""
    try:
        ray.get(value_ref, timeout=0)
    except Exception:
        pass


def _cause(error: BaseException) -> BaseException:
    if isinstance(error, RayTaskError) and error.cause is not None:
        return error.cause
    return error


def _error_type(error: BaseException) -> str:
    cause = _cause(error)
    if isinstance(cause, TaskCancelledError):
        return "ray.exceptions.TaskCancelledError"
    return f"{type(cause).__module__}.{type(cause).__qualname__}"

