"""ray-durable: durable Ray workflows on an event log. ``import engine as workflow``.

The names, arguments and statuses are those of ``ray.workflow`` (Ray <= 2.47).
The API is loaded on first use (PEP 562), so ``ray-durable replay ...`` can
run through this package's CLI without importing Ray.
"""

from __future__ import annotations

import importlib
from typing import Any

from replay import WorkflowStatus

RUNNING = WorkflowStatus.RUNNING
FAILED = WorkflowStatus.FAILED
RESUMABLE = WorkflowStatus.RESUMABLE
CANCELED = WorkflowStatus.CANCELED
SUCCESSFUL = WorkflowStatus.SUCCESSFUL
PENDING = WorkflowStatus.PENDING

_LAZY = {
    "continuation": "._api", "get_metadata": "._api", "get_output": "._api",
    "get_output_async": "._api", "get_status": "._api", "resume": "._api",
    "resume_async": "._api", "run": "._api", "run_async": "._api",
    "init": "._context",
    "WorkflowCancellationError": "._errors", "WorkflowError": "._errors",
    "WorkflowExecutionError": "._errors", "WorkflowNotFoundError": "._errors",
    "WorkflowNotResumableError": "._errors", "WorkflowRunningError": "._errors",
    "WorkflowQueueFullError": "._errors",
    "cancel": "._management", "delete": "._management", "list_all": "._management",
    "resume_all": "._management", "reindex": "._management",
    "options": "._options",
}

__all__ = ["CANCELED", "FAILED", "PENDING", "RESUMABLE", "RUNNING", "SUCCESSFUL", "WorkflowStatus",
           *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
