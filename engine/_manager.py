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

from ._outputs import output_from_state
from ._errors import WorkflowError, WorkflowNotResumableError, WorkflowRunningError
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
        self._claiming: set[str] = set()
        self._finished: dict[str, WorkflowRun] = {}

    @property
    def storage(self):
        if self._storage is None:
            self._storage = open_storage(self.storage_url, **self.storage_options)
        return self._storage

    def ping(self) -> str:
        return self.storage_url

    async def start(self, workflow_id: str) -> bool:
        """Claim and start driving a workflow; returns once it runs (False: it had already succeeded).

        Raises:
            WorkflowRunningError: it is being driven, here or (per its log) by another driver.
            WorkflowNotResumableError: it does not exist or was canceled.
        """
        if workflow_id in self.runs or workflow_id in self._claiming:
            raise WorkflowRunningError(workflow_id)
        self._claiming.add(workflow_id)
        try:
            state = await load_state(self.storage, workflow_id)
            if state.status is None:
                raise WorkflowNotResumableError(workflow_id, "it does not exist")
            if state.status is WorkflowStatus.CANCELED:
                raise WorkflowNotResumableError(workflow_id, "it was canceled")
            if state.status is WorkflowStatus.SUCCESSFUL:
                return False
            run = WorkflowRun(self.storage, self.storage_url, self.storage_options, state,
                              manager_name(self.storage_url))
            try:
                await run.start()
            except AppendConflictError:
                raise WorkflowRunningError(
                    workflow_id, "another driver appended to its log first (it is running elsewhere)"
                ) from None
            if not run.result.done():
                self.runs[workflow_id] = run
                run.result.add_done_callback(lambda _f: self._forget(workflow_id, run))
            else:
                self._finished[workflow_id] = run  # finished during start; keep its answer briefly
            return True
        finally:
            self._claiming.discard(workflow_id)

    def _forget(self, workflow_id: str, run: WorkflowRun) -> None:
        if self.runs.get(workflow_id) is run:
            del self.runs[workflow_id]

    async def wait_output(self, workflow_id: str, task_id: str | None = None) -> Any:
        """The workflow's (or a task's) output: awaited if it is running here, else from its log."""
        run = self.runs.get(workflow_id) or self._finished.pop(workflow_id, None)
        if run is not None:
            try:
                value = await asyncio.shield(run.result)
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

    def running(self) -> list[str]:
        return sorted(self._claiming | {wid for wid, run in self.runs.items() if not run.finished})

    def is_running(self, workflow_id: str) -> bool:
        run = self.runs.get(workflow_id)
        return workflow_id in self._claiming or (run is not None and not run.finished)

    async def cancel(self, workflow_id: str) -> bool:
        """Cancel a workflow driven here; False if this manager is not driving it."""
        run = self.runs.get(workflow_id)
        if run is None or run.finished:
            return False
        await run.cancel()
        self.runs.pop(workflow_id, None)
        return True
