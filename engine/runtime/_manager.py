"""The management actor: a named, detached async Ray actor per storage.

It owns every workflow being driven on this cluster (one asyncio task each),
so "is anyone driving workflow X?" has one answer: ask it. Workflows it does
not hold, but whose log says RUNNING, are RESUMABLE. Claiming a workflow is an
append to its log (WorkflowRunStarted at the next seq), so two managers on two
clusters sharing a storage can never both drive one workflow.
"""

from __future__ import annotations

import asyncio
import gc
import os
from collections import OrderedDict
from typing import Any

import ray

from replay import WorkflowState, WorkflowStatus, WorkflowSubmitted, apply, decode_event, load_state
from storage_backends import AppendConflictError, StorageError, open_storage

from .._names import NAMESPACE, manager_name
from ..exceptions import (
    WorkflowCancellationError,
    WorkflowError,
    WorkflowNotResumableError,
    WorkflowQueueFullError,
    WorkflowRunningError,
)
from ..store._index import IndexWriter
from ..store._outputs import output_from_state
from ._run import WorkflowRun
from ._storage_faults import storage_interruption

@ray.remote(num_cpus=0, max_concurrency=100_000)
class WorkflowManager:
    def __init__(self, storage_url: str, storage_options: dict[str, Any],
                 limits: dict[str, int | None] | None = None):
        # Runs poll finished outcomes with a ray.get of refs already known to be ready
        # (engine/_arrivals.py): it never blocks, so Ray's warning about blocking gets in
        # async actors would only mislead whoever reads this actor's log.
        os.environ["RAY_WARN_BLOCKING_GET_INSIDE_ASYNC"] = "0"
        # Everything alive now (Ray's and our modules) lives as long as this actor: moved out
        # of the collector's sight, a full collection takes ~5 ms instead of ~50 ms mid-run.
        gc.freeze()
        self.storage_url = storage_url
        self.storage_options = storage_options
        limits = limits or {}
        self.max_running = limits.get("max_running_workflows")
        self.max_pending = limits.get("max_pending_workflows")
        self._storage = None
        self._index = None
        self.runs: dict[str, WorkflowRun] = {}
        self._claiming: set[str] = set()
        self._finished: dict[str, WorkflowRun] = {}
        self._queue: OrderedDict[str, asyncio.Future] = OrderedDict()  # PENDING, in submission order
        self._env_values: dict[str, dict] = {}  # queued workflow -> what its recorded runtime env left out

    @property
    def storage(self):
        if self._storage is None:
            self._storage = open_storage(self.storage_url, **self.storage_options)
            self._index = IndexWriter(self._storage)
        return self._storage

    def limits(self) -> dict[str, int | None]:
        """The queueing limits this manager runs with (None: no limit)."""
        return {"max_running_workflows": self.max_running, "max_pending_workflows": self.max_pending}

    async def start(self, workflow_id: str, submission: bytes | None = None,
                    env_values: dict | None = None) -> str:
        """Claim and start driving a workflow, or queue it if ``max_running`` are running.

        Args:
            submission: the record a driver has just appended at seq 0 of a new workflow.
                Folded instead of reading the log back; if anything was appended after
                it meanwhile, the claim's append at seq 1 conflicts.
            env_values: what the recorded runtime env leaves out (env var values, URL
                credentials), from the driver's job: the run's tasks get them, the log never.

        Returns:
            "started", "queued", or "finished" (it had already succeeded).

        Raises:
            WorkflowRunningError: it is being driven, here or (per its log) by another driver.
            WorkflowNotResumableError: it does not exist or was canceled.
            WorkflowQueueFullError: ``max_pending`` workflows are already queued.
        """
        if self.live_status(workflow_id) is not None:
            raise WorkflowRunningError(workflow_id)
        state = _submitted_state(workflow_id, submission)
        if state is None:
            state = await load_state(self.storage, workflow_id)
        if state.status is None:
            raise WorkflowNotResumableError(workflow_id, "it does not exist")
        if state.status is WorkflowStatus.CANCELED:
            raise WorkflowNotResumableError(workflow_id, "it was canceled")
        if state.status is WorkflowStatus.SUCCESSFUL:
            return "finished"
        if self.live_status(workflow_id) is not None:  # claimed while we read the log
            raise WorkflowRunningError(workflow_id)
        if self._full():
            if self.max_pending is not None and len(self._queue) >= self.max_pending:
                raise WorkflowQueueFullError(workflow_id, self.max_pending)
            self._queue[workflow_id] = asyncio.get_running_loop().create_future()
            self._queue[workflow_id].add_done_callback(lambda f: f.cancelled() or f.exception())
            self._env_values[workflow_id] = env_values or {}
            return "queued"
        await self._launch(workflow_id, state, env_values)  # (no await since the read: the state is current)
        return "started"

    def _active(self) -> int:
        return len(self._claiming) + sum(1 for run in self.runs.values() if not run.finished)

    def _full(self) -> bool:
        return self.max_running is not None and self._active() >= self.max_running

    async def _launch(self, workflow_id: str, state: WorkflowState | None = None,
                      env_values: dict | None = None) -> None:
        self._claiming.add(workflow_id)
        try:
            if state is None:
                state = await load_state(self.storage, workflow_id)
            run = WorkflowRun(self.storage, self.storage_url, self.storage_options, state,
                              manager_name(self.storage_url), index=self._index, env_values=env_values)
            try:
                await run.start()
            except AppendConflictError:
                raise WorkflowRunningError(
                    workflow_id, "another driver appended to its log first (it is running elsewhere)"
                ) from None
            except StorageError as exc:  # the claim's append failed: nothing was written
                raise storage_interruption(workflow_id, exc) or exc
            if not run.result.done():
                self.runs[workflow_id] = run
                run.result.add_done_callback(lambda _f: self._forget(workflow_id, run))
            else:
                self._finished[workflow_id] = run  # finished during start; keep its answer briefly
        finally:
            self._claiming.discard(workflow_id)
            self._drain_queue()

    def _forget(self, workflow_id: str, run: WorkflowRun) -> None:
        if self.runs.get(workflow_id) is run:
            del self.runs[workflow_id]
        self._drain_queue()

    def _drain_queue(self) -> None:
        while self._queue and not self._full():
            workflow_id, started = self._queue.popitem(last=False)
            self._claiming.add(workflow_id)  # counts against max_running from now on
            asyncio.ensure_future(self._launch_queued(workflow_id, started))

    async def _launch_queued(self, workflow_id: str, started: asyncio.Future) -> None:
        self._claiming.discard(workflow_id)
        try:
            await self._launch(workflow_id, env_values=self._env_values.pop(workflow_id, None))
        except BaseException as exc:
            if not started.done():
                started.set_exception(exc)
            return
        if not started.done():
            started.set_result(None)

    async def run(self, workflow_id: str, submission: bytes | None = None,
                  env_values: dict | None = None) -> Any:
        """:meth:`start` then :meth:`wait_output`, in one call from the driver (``workflow.run``)."""
        await self.start(workflow_id, submission, env_values)
        return await self.wait_output(workflow_id)

    async def wait_output(self, workflow_id: str, task_id: str | None = None) -> Any:
        """The workflow's (or a task's) output: awaited if it is running or queued here, else from its log."""
        queued = self._queue.get(workflow_id)
        if queued is not None:
            await asyncio.shield(queued)
        run = self.runs.get(workflow_id) or self._finished.pop(workflow_id, None)
        if run is not None:
            result = run.result
            # An error raised here keeps this frame alive in its traceback, and the run holds
            # that error: a cycle that would keep the whole run (its ObjectRefs too) until the
            # collector's next full pass. So the frame must not hold the run.
            del run
            try:
                value = await asyncio.shield(result)
            except WorkflowError:
                if task_id is None:
                    raise
            else:
                if task_id is None:
                    return value
        state = await load_state(self.storage, workflow_id)
        return await output_from_state(self.storage, workflow_id, state, task_id)

    def task_started(self, workflow_id: str, run_id: str, task_id: str, attempt: int,
                     ts: float, pid: int, node: str) -> None:
        run = self.runs.get(workflow_id)
        if run is not None and run.run_id == run_id:
            run.on_started(task_id, attempt, ts, pid, node)

    def live_status(self, workflow_id: str) -> str | None:
        """"RUNNING" if driven here, "PENDING" if queued here, None if this manager does not hold it."""
        if workflow_id in self._queue:
            return "PENDING"
        run = self.runs.get(workflow_id)
        # Until its result is set, not just until it stops running tasks: a run that has
        # finished is still appending its final events, and a caller told "not running here"
        # reads the log next, which must then hold the end.
        if workflow_id in self._claiming or (run is not None and not run.result.done()):
            return "RUNNING"
        return None

    def live_statuses(self) -> dict[str, str]:
        """live_status of every workflow this manager holds."""
        live = {wid: "PENDING" for wid in self._queue}
        live.update((wid, "RUNNING") for wid in self._claiming)
        live.update((wid, "RUNNING") for wid, run in self.runs.items() if not run.result.done())
        return live

    async def cancel(self, workflow_id: str) -> bool:
        """Cancel a workflow driven here (True); False if this manager is not driving it.

        A queued workflow is taken off the queue (False: the caller records the cancel).
        """
        queued = self._queue.pop(workflow_id, None)
        self._env_values.pop(workflow_id, None)
        if queued is not None:
            queued.set_exception(WorkflowCancellationError(workflow_id))
            return False
        run = self.runs.get(workflow_id)
        if run is None or run.finished:
            return False
        await run.cancel()
        self.runs.pop(workflow_id, None)
        return True


def _submitted_state(workflow_id: str, submission: bytes | None) -> WorkflowState | None:
    """The fold of a new workflow's log holding only ``submission``; None if that is not what it is."""
    if submission is None:
        return None
    event = decode_event(submission)
    if not isinstance(event, WorkflowSubmitted) or event.workflow_id != workflow_id:
        return None  # not a submission of this workflow: read the log instead
    return apply(WorkflowState(), event, 0)
