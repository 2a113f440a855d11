"""The exceptions of the ray.workflow API, same names and meanings."""

from __future__ import annotations

from storage_backends import StorageError


class WorkflowError(Exception):
    """Base class of every workflow error."""


class WorkflowNotFoundError(WorkflowError, ValueError):
    """No workflow with that id exists in this storage (a ValueError, as in ray.workflow)."""

    def __init__(self, workflow_id: str, storage_url: str = ""):
        self.workflow_id = workflow_id
        where = f" in storage {storage_url}" if storage_url else ""
        super().__init__(f"workflow {workflow_id!r} does not exist{where}")
        self.storage_url = storage_url

    def __reduce__(self):
        return (type(self), (self.workflow_id, self.storage_url))


class WorkflowExecutionError(WorkflowError):
    """A task failed (after its retries); carries the task id and the original exception."""

    def __init__(self, workflow_id: str, task_id: str, cause: BaseException | None, message: str = ""):
        self.workflow_id = workflow_id
        self.task_id = task_id
        self.cause = cause
        detail = message or (f"{type(cause).__name__}: {cause}" if cause is not None else "failed")
        super().__init__(f"workflow {workflow_id!r} failed: task {task_id!r} raised {detail}")
        if cause is not None:
            self.__cause__ = cause

    def __reduce__(self):
        return (type(self), (self.workflow_id, self.task_id, self.cause, ""))


class WorkflowCancellationError(WorkflowError):
    """The workflow was canceled; its result is unavailable."""

    def __init__(self, workflow_id: str):
        self.workflow_id = workflow_id
        super().__init__(f"workflow {workflow_id!r} was canceled; its result is unavailable")

    def __reduce__(self):
        return (type(self), (self.workflow_id,))


class WorkflowNotResumableError(WorkflowError):
    """The workflow cannot be resumed: unknown, canceled, or already running elsewhere."""

    def __init__(self, workflow_id: str, reason: str = ""):
        self.workflow_id = workflow_id
        self.reason = reason
        super().__init__(f"workflow {workflow_id!r} cannot be resumed" + (f": {reason}" if reason else ""))

    def __reduce__(self):
        return (type(self), (self.workflow_id, self.reason))


class WorkflowRunningError(WorkflowNotResumableError):
    """Another driver is already running this workflow."""

    def __init__(self, workflow_id: str, reason: str = "it is already running (another driver owns it)"):
        super().__init__(workflow_id, reason)


class WorkflowQueueFullError(WorkflowError):
    """More workflows are waiting than ``max_pending_workflows`` allows; nothing was submitted."""

    def __init__(self, workflow_id: str, max_pending: int):
        self.workflow_id = workflow_id
        self.max_pending = max_pending
        super().__init__(
            f"cannot submit workflow {workflow_id!r}: {max_pending} workflows are already pending "
            "(max_pending_workflows); wait for some to finish or raise the limit in workflow.init()"
        )

    def __reduce__(self):
        return (type(self), (self.workflow_id, self.max_pending))


class WorkflowInterruptedError(WorkflowError):
    """The run driving a workflow stopped before its end through no fault of the workflow (the
    manager actor driving it was lost, or its storage failed). Nothing durable was lost: the
    workflow is RESUMABLE, and ``resume(workflow_id)`` continues it from its last durable point.

    Attributes:
        workflow_id: the workflow.
        reason: what stopped it.
    """

    def __init__(self, workflow_id: str, reason: str):
        self.workflow_id = workflow_id
        self.reason = reason
        super().__init__(
            f"workflow {workflow_id!r} was interrupted: {reason}. Nothing durable was lost: it is "
            f"RESUMABLE, and workflow.resume({workflow_id!r}) continues it from its last durable point")

    def __reduce__(self):
        return (type(self), (self.workflow_id, self.reason))


class WorkflowStorageError(WorkflowInterruptedError, StorageError):
    """Interrupted because its storage failed (a full or read-only disk, an S3 outage): both a
    workflow error and a storage error. Resume it once the storage works again.

    Attributes:
        path: the file, directory or S3 key that failed, when the storage said ("" if not).
    """

    def __init__(self, workflow_id: str, reason: str, path: str = ""):
        self.path = path
        super().__init__(workflow_id, reason)

    def __reduce__(self):
        return (type(self), (self.workflow_id, self.reason, self.path))
