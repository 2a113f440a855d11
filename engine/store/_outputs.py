"""Answering "what is the output?" from a folded log (used by the driver and the manager)."""

from __future__ import annotations

from typing import Any

from replay import TaskStatus, WorkflowState, WorkflowStatus
from storage_backends import BlobNotFoundError

from . import _payloads
from ._offline import OUTPUTS_DROPPED
from ..exceptions import WorkflowCancellationError, WorkflowError, WorkflowExecutionError


async def output_from_state(storage, workflow_id: str, state: WorkflowState, task_id: str | None) -> Any:
    """The stored output of the workflow (or of ``task_id``), or the error that explains its absence."""
    if task_id is not None:
        task = state.tasks.get(task_id)
        if task is None:
            raise ValueError(f"workflow {workflow_id!r} has no task {task_id!r} "
                             f"(tasks: {', '.join(list(state.tasks)[:20])})")
        if task.status is not TaskStatus.SUCCESSFUL or task.output is None or task.output.codec == "none":
            raise ValueError(f"task {task_id!r} of workflow {workflow_id!r} has no stored output "
                             f"(it is {task.status})")
        try:
            return await _payloads.load_value(storage, workflow_id, task.output)
        except BlobNotFoundError:
            if await storage.blob_exists(workflow_id, OUTPUTS_DROPPED):
                raise ValueError(f"the output of task {task_id!r} of workflow {workflow_id!r} was dropped "
                                 "(run with keep='output', or gc --keep-output); only the workflow's result "
                                 "is kept") from None
            raise
    if state.status is WorkflowStatus.SUCCESSFUL:
        return await _payloads.load_value(storage, workflow_id, state.output)
    if state.status is WorkflowStatus.CANCELED:
        raise WorkflowCancellationError(workflow_id)
    if state.status is WorkflowStatus.FAILED:
        cause = None
        failed = state.tasks.get(state.failed_task_id or "")
        if failed is not None and failed.error is not None and failed.error.payload is not None:
            try:
                cause = await _payloads.load_value(storage, workflow_id, failed.error.payload)
            except Exception:
                cause = None
        return _raise(WorkflowExecutionError(workflow_id, state.failed_task_id or "?", cause,
                                             "" if cause is not None else f"{state.error_type}: {state.error_message}"))
    # Not "cannot be resumed": resuming is exactly what it needs.
    raise WorkflowError(
        f"workflow {workflow_id!r} has no output yet: it is RESUMABLE (its last run stopped before "
        f"the end and nothing drives it now); call workflow.resume({workflow_id!r}) to finish it")


def _raise(exc: BaseException) -> Any:
    raise exc
