"""The workflow errors, as ``ray.workflow.exceptions`` (2.47) named them, plus ours.

Every class 2.47 had is here with the same name and base classes, so code that caught them
still does; each also keeps 2.47's ``.message`` attribute. Where ray-durable adds meaning, a
class gains a base: a ``WorkflowRunningError`` is also a ``RuntimeError`` (2.47 raised a
plain RuntimeError for "already running"), a ``WorkflowQueueFullError`` is also a
``queue.Full`` (what 2.47 raised), ``WorkflowNotFoundError`` is also a ``ValueError``.

The blocking API (``run``, ``resume``, ``get_output``) raises a failed or canceled workflow's
error as an instance of both the error and ``ray.exceptions.RayTaskError`` (see
:func:`as_ray_task_error`): 2.47's ``run`` was ``ray.get`` of an actor call, so its errors
were those dual instances, and its documentation's error-handling examples catch
``ray.exceptions.RayTaskError``.
"""

from __future__ import annotations

import os
import queue


from storage_backends import StorageError

__all__ = [
    "DuplicateEventError",
    "WorkflowCancellationError",
    "WorkflowError",
    "WorkflowEventError",
    "WorkflowExecutionError",
    "WorkflowForkError",
    "WorkflowInterruptedError",
    "WorkflowNotFoundError",
    "WorkflowNotResumableError",
    "WorkflowQueueFullError",
    "WorkflowRunningError",
    "WorkflowStillActiveError",
    "WorkflowStorageError",
    "WorkflowTaskNotRecoverableError",
    "as_ray_task_error",
]


class WorkflowError(Exception):
    """Base class of every workflow error."""

    def __init__(self, message: str = ""):
        self.message = message
        super().__init__(message)


class WorkflowNotFoundError(WorkflowError, ValueError):
    """No workflow with that id exists in this storage (a ValueError, as 2.47's lookups raised)."""

    def __init__(self, workflow_id: str, storage_url: str = ""):
        self.workflow_id = workflow_id
        self.storage_url = storage_url
        where = f" in storage {storage_url}" if storage_url else ""
        super().__init__(f"workflow {workflow_id!r} does not exist{where}")

    def __reduce__(self):
        return (type(self), (self.workflow_id, self.storage_url))


class WorkflowExecutionError(WorkflowError):
    """A task failed (after its retries) and nothing caught it.

    Attributes:
        workflow_id, task_id: the workflow and the task that failed.
        cause: the task's exception, or None if it could not be pickled (then the message
            still names its type and text).
    """

    def __init__(self, workflow_id: str, task_id: str, cause: BaseException | None, message: str = ""):
        self.workflow_id = workflow_id
        self.task_id = task_id
        self.cause = cause
        self.detail = message
        detail = message or (f"{type(cause).__name__}: {cause}" if cause is not None else "an error")
        super().__init__(f"workflow {workflow_id!r} failed: task {task_id!r} raised {detail}")
        if cause is not None:
            self.__cause__ = cause

    def __reduce__(self):
        return (type(self), (self.workflow_id, self.task_id, self.cause, self.detail))


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


class WorkflowTaskNotRecoverableError(WorkflowNotResumableError):
    """A task cannot be recovered from what storage holds (e.g. its checkpoint is gone)."""

    def __init__(self, workflow_id: str, task_id: str, reason: str = ""):
        self.task_id = task_id
        super().__init__(workflow_id, f"task {task_id!r} cannot be recovered" + (f": {reason}" if reason else ""))

    def __reduce__(self):
        return (type(self), (self.workflow_id, self.task_id, self.reason))


class WorkflowRunningError(WorkflowNotResumableError, RuntimeError):
    """Another driver is already running this workflow (2.47 raised a RuntimeError here)."""

    def __init__(self, workflow_id: str, reason: str = "it is already running (another driver owns it)"):
        super().__init__(workflow_id, reason)


class WorkflowStillActiveError(WorkflowError):
    """An operation that needs a stopped workflow (``delete``) met a RUNNING or PENDING one."""

    def __init__(self, operation: str, workflow_id: str, status: str = "running or pending"):
        self.operation = operation
        self.workflow_id = workflow_id
        self.status = status
        super().__init__(f"{operation} of workflow {workflow_id!r} refused: it is {status}; "
                         "cancel it first (workflow.cancel) or wait for it to end")

    def __reduce__(self):
        return (type(self), (self.operation, self.workflow_id, self.status))


class WorkflowQueueFullError(WorkflowError, queue.Full):
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


class WorkflowEventError(WorkflowError, ValueError):
    """An event the workflow does not take: it has ended (SUCCESSFUL or CANCELED), or the event
    is not valid. Nothing was recorded. (The HTTP provider answers 409 for an ended workflow.)"""

    def __init__(self, workflow_id: str, event_key: str, reason: str):
        self.workflow_id = workflow_id
        self.event_key = event_key
        self.reason = reason
        super().__init__(f"event {event_key!r} for workflow {workflow_id!r} was not accepted: {reason}")

    def __reduce__(self):
        return (type(self), (self.workflow_id, self.event_key, self.reason))


class DuplicateEventError(WorkflowEventError):
    """An event with this key was already sent to the workflow: each key is delivered once
    (the HTTP provider answers 409). The first event stays; this one was not recorded."""

    def __init__(self, workflow_id: str, event_key: str, reason: str = ""):
        super().__init__(workflow_id, event_key, reason or (
            "an event with this key was already sent to it, and each key is delivered once; "
            "send it under another key"))


_dual_classes: dict[type, type] = {}


def as_ray_task_error(error: WorkflowError) -> WorkflowError:
    """``error`` as an instance of both its class and ``ray.exceptions.RayTaskError``.

    Its attributes, message and ``__cause__`` are ``error``'s; ``.cause`` stays what the
    workflow error says (for WorkflowExecutionError, the task's exception). Named like Ray's
    own dual classes: ``RayTaskError(WorkflowExecutionError)``.
    """
    from ray.exceptions import RayTaskError  # here, not at the top: the CLI and UI must not import Ray

    cls = type(error)
    dual = _dual_classes.get(cls)
    if dual is None:
        name = f"RayTaskError({cls.__name__})"
        dual = _dual_classes[cls] = type(name, (cls, RayTaskError), {
            "__module__": cls.__module__, "__qualname__": name, "__init__": _no_init,
            "__str__": lambda self: self.message, "__reduce__": _reduce_as_plain,
        })
    instance = dual.__new__(dual)
    instance.__dict__.update(error.__dict__)
    instance.args = error.args
    instance.__cause__ = error.__cause__
    # What RayTaskError's own methods read; this error never ran as a Ray task of its own.
    instance.__dict__.setdefault("cause", error)
    instance.function_name = "workflow"
    instance.traceback_str = error.message
    instance.proctitle = ""
    instance.pid = os.getpid()
    instance.ip = ""
    instance.actor_repr = None
    instance._actor_id = None
    return instance


def _no_init(self, *args, **kwargs) -> None:  # instances are made by as_ray_task_error only
    pass


def _reduce_as_plain(self):
    """Pickled (e.g. returned from a task), the dual instance travels as the plain error."""
    plain_cls = next(c for c in type(self).__mro__[1:] if issubclass(c, WorkflowError))
    plain = plain_cls.__new__(plain_cls)
    plain.__dict__.update({k: v for k, v in self.__dict__.items() if k not in _RAY_FIELDS})
    plain.args = self.args
    return plain.__reduce__()


_RAY_FIELDS = frozenset({"function_name", "traceback_str", "proctitle", "pid", "ip", "actor_repr",
                         "_actor_id"})


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


class WorkflowForkError(WorkflowError, ValueError):
    """``workflow.fork`` / ``workflow.check`` refused its input (an existing new id, an unknown or
    never-started ``from_task``, ...); nothing was written. The message names the workflow and
    the task, and says what to do."""

    def __init__(self, workflow_id: str, reason: str):
        self.workflow_id = workflow_id
        self.reason = reason
        super().__init__(f"cannot fork workflow {workflow_id!r}: {reason}")

    def __reduce__(self):
        return (type(self), (self.workflow_id, self.reason))
