"""ray-durable: durable Ray workflows on an event log. ``import engine as workflow``.

The names, arguments and statuses are those of ``ray.workflow`` (Ray <= 2.47).
The API is loaded on first use (PEP 562), so ``ray-durable replay ...`` can
run through this package's CLI without importing Ray.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

from replay import WorkflowStatus

# The engine's messages go through the "engine" logger; the application decides where they go.
logging.getLogger(__name__).addHandler(logging.NullHandler())

RUNNING = WorkflowStatus.RUNNING
FAILED = WorkflowStatus.FAILED
RESUMABLE = WorkflowStatus.RESUMABLE
CANCELED = WorkflowStatus.CANCELED
SUCCESSFUL = WorkflowStatus.SUCCESSFUL
PENDING = WorkflowStatus.PENDING

_LAZY = {
    "continuation": ".api._workflows", "get_metadata": ".api._workflows", "get_output": ".api._workflows",
    "get_output_async": ".api._workflows", "get_status": ".api._workflows", "resume": ".api._workflows",
    "resume_async": ".api._workflows", "run": ".api._workflows", "run_async": ".api._workflows",
    "init": ".api._init",
    "fork": ".api._fork", "fork_async": ".api._fork", "check": ".api._fork",
    "WorkflowForkError": ".exceptions",
    "WorkflowCancellationError": ".exceptions", "WorkflowError": ".exceptions",
    "WorkflowExecutionError": ".exceptions", "WorkflowNotFoundError": ".exceptions",
    "WorkflowNotResumableError": ".exceptions", "WorkflowRunningError": ".exceptions",
    "WorkflowQueueFullError": ".exceptions", "WorkflowStillActiveError": ".exceptions",
    "WorkflowTaskNotRecoverableError": ".exceptions", "WorkflowInterruptedError": ".exceptions",
    "WorkflowStorageError": ".exceptions",
    "cancel": ".management._operations", "delete": ".management._operations", "list_all": ".management._operations",
    "resume_all": ".management._operations", "reindex": ".management._operations",
    "gc": ".management._gc", "Retention": ".store._retention", "GcReport": ".store._retention",
    "options": ".graph._options",
    "sleep": ".graph._waits", "wait_for_event": ".graph._waits", "send_event": ".api._events",
    "EventListener": ".event_listener",
    "WorkflowEventError": ".exceptions", "DuplicateEventError": ".exceptions",
}

__all__ = ["CANCELED", "FAILED", "PENDING", "RESUMABLE", "RUNNING", "SUCCESSFUL", "WorkflowStatus",
           *sorted(_LAZY)]


_SUBMODULES = frozenset({"exceptions", "event_listener", "http_event_provider"})


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:  # engine.exceptions, as ray.workflow.exceptions (and .event_listener, ...)
        return importlib.import_module(f".{name}", __name__)
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | _SUBMODULES)
