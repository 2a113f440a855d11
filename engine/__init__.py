"""ray-durable: durable Ray workflows on an event log. ``import engine as workflow``.

The names, arguments and statuses are those of ``ray.workflow`` (Ray <= 2.47).
"""

from replay import WorkflowStatus

from ._api import (
    continuation,
    get_metadata,
    get_output,
    get_output_async,
    get_status,
    resume,
    resume_async,
    run,
    run_async,
)
from ._context import init
from ._errors import (
    WorkflowCancellationError,
    WorkflowError,
    WorkflowExecutionError,
    WorkflowNotFoundError,
    WorkflowNotResumableError,
    WorkflowRunningError,
)
from ._management import cancel, delete, list_all, resume_all
from ._options import options

RUNNING = WorkflowStatus.RUNNING
FAILED = WorkflowStatus.FAILED
RESUMABLE = WorkflowStatus.RESUMABLE
CANCELED = WorkflowStatus.CANCELED
SUCCESSFUL = WorkflowStatus.SUCCESSFUL
PENDING = WorkflowStatus.PENDING

__all__ = [
    "CANCELED", "FAILED", "PENDING", "RESUMABLE", "RUNNING", "SUCCESSFUL",
    "WorkflowCancellationError", "WorkflowError", "WorkflowExecutionError", "WorkflowNotFoundError",
    "WorkflowNotResumableError", "WorkflowRunningError", "WorkflowStatus",
    "cancel", "continuation", "delete", "get_metadata", "get_output", "get_output_async",
    "get_status", "init", "list_all", "options", "resume", "resume_all", "resume_async", "run",
    "run_async",
]
