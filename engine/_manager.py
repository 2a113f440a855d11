"""The management actor: a named, detached async Ray actor per storage.

It owns every workflow being driven on this cluster (one asyncio task each),
so "is anyone driving workflow X?" has one answer: ask it. Workflows it does
not hold, but whose log says RUNNING, are RESUMABLE. Claiming a workflow is an
append to its log (WorkflowRunStarted at the next seq), so two managers on two
clusters sharing a storage can never both drive one workflow.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import ray

from replay import WorkflowStatus, load_state
from storage_backends import AppendConflictError, open_storage

from . import _payloads
from ._errors import (
    WorkflowCancellationError,
    WorkflowError,
    WorkflowExecutionError,
    WorkflowNotResumableError,
    WorkflowRunningError,
)
from ._runner import WorkflowRun

NAMESPACE = "ray_durable"


def manager_name(storage_url: str) -> str:
    return "ray-durable-manager-" + hashlib.sha1(storage_url.encode()).hexdigest()[:16]


@ray.remote(num_cpus=0, max_concurrency=100_000)
class WorkflowManager:
    def __init__(self, storage_url: str, storage_options: dict[str, Any]):
        self.storage_url = storage_url
        self.storage_options = storage_options
        self._storage = None
        self.runs: dict[str, WorkflowRun] = {}
        self._self_handle = None

    @property
    def storage(self):
        if self._storage is None:
            self._storage = open_storage(self.storage_url, **self.storage_options)
        return self._storage

    def ping(self) -> str:
        return self.storage_url

    async def run_workflow(self, workflow_id: str) -> Any:
        """Drive the workflow (first run or resume) and return its output."""
        run = self.runs.get(workflow_id)
        if run is not None:
            raise WorkflowRunningError(workflow_id)
        if self._self_handle is None:
            self._self_handle = ray.get_runtime_context().current_actor
        state = await load_state(self.storage, workflow_id)
        if state.status is None:
            raise WorkflowNotResumableError(workflow_id, "it does not exist")
        if state.status is WorkflowStatus.CANCELED:
            raise WorkflowNotResumableError(workflow_id, "it was canceled")
        if state.status is WorkflowStatus.SUCCESSFUL:
            return await _payloads.load_value(self.storage, workflow_id, state.output)
        run = WorkflowRun(self.storage, self.storage_url, self.storage_options, state, self._self_handle)
        self.runs[workflow_id] = run
        run.result.add_done_callback(lambda _f: self._forget(workflow_id, run))
        try:
            await run.start()
        except AppendConflictError:
            self._forget(workflow_id, run)
            raise WorkflowRunningError(
                workflow_id, "another driver appended to its log first (it is running elsewhere)"
            ) from None
        except BaseException:
            self._forget(workflow_id, run)
            raise
        return await asyncio.shield(run.result)

    def _forget(self, workflow_id: str, run: WorkflowRun) -> None:
        if self.runs.get(workflow_id) is run:
            del self.runs[workflow_id]

    async def wait_output(self, workflow_id: str, task_id: str | None = None) -> Any:
        """Wait for a running workflow; its output, or one task's. None if not running here."""
        run = self.runs.get(workflow_id)
        if run is None:
            return _NOT_RUNNING
        if task_id is None:
            return await asyncio.shield(run.result)
        try:
            await asyncio.shield(run.result)
        except WorkflowError:
            pass
        task = run.state.tasks.get(task_id)
        if task is None or task.output is None or task.output.codec == "none":
            raise ValueError(f"task {task_id!r} of workflow {workflow_id!r} has no stored output")
        return await _payloads.load_value(self.storage, workflow_id, task.output)

    def task_started(self, workflow_id: str, run_id: str, task_id: str, attempt: int,
                     ts: float, pid: int, node: str) -> None:
        run = self.runs.get(workflow_id)
        if run is not None and run.run_id == run_id:
            run.on_started(task_id, attempt, ts, pid, node)

    def running(self) -> list[str]:
        return [wid for wid, run in self.runs.items() if not run.finished]

    def is_running(self, workflow_id: str) -> bool:
        run = self.runs.get(workflow_id)
        return run is not None and not run.finished

    async def cancel(self, workflow_id: str) -> bool:
        """Cancel a workflow driven here; False if this manager is not driving it."""
        run = self.runs.get(workflow_id)
        if run is None or run.finished:
            return False
        await run.cancel()
        self.runs.pop(workflow_id, None)
        return True


class _NotRunning:
    def __reduce__(self):
        return (_not_running, ())


def _not_running() -> _NotRunning:
    return _NOT_RUNNING


_NOT_RUNNING = _NotRunning()

__all__ = ["WorkflowManager", "manager_name", "NAMESPACE", "WorkflowCancellationError",
           "WorkflowExecutionError"]
