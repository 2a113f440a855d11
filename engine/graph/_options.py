"""``workflow.options``: per-task workflow options, the ray.workflow 2.47 way, on Ray 2.48+.

``workflow.options(...)`` returns :class:`WorkflowOptions`, which is both

* a mapping, so ``f.options(**workflow.options(task_id="x")).bind(...)`` works as in 2.47
  (the options ride on a Ray option Ray accepts: see :mod:`engine.graph._ray_carrier`), and
* a decorator: ``@workflow.options(...)`` above ``@ray.remote`` gives a
  :class:`WorkflowFunction` whose ``.bind(...)`` makes an ordinary Ray ``FunctionNode``
  carrying the options; Ray's own ``.options(num_cpus=...)`` still works on it.

Either way the options end up in the node's ``_bound_options``, where :func:`node_options`
finds them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from . import _ray_carrier


@dataclass(frozen=True)
class TaskOptions:
    """The workflow-level options of one task (ray.workflow's names and defaults)."""

    task_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    catch_exceptions: bool = False
    checkpoint: bool = True
    max_retries: int = 3  # system failures (and exceptions, if retry_exceptions) are retried
    retry_exceptions: bool | tuple[type[BaseException], ...] = False

    def merged(self, **changes: Any) -> TaskOptions:
        return replace(self, **changes)


OPTION_NAMES = ("task_id", "metadata", "catch_exceptions", "checkpoint", "max_retries", "retry_exceptions")


def check_json_metadata(metadata: Any, what: str) -> dict[str, Any]:
    """Metadata must be a JSON-serializable dict with str keys; say which key breaks it."""
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise ValueError(f"{what} metadata must be a dict, got {type(metadata).__name__}")
    for key, value in metadata.items():
        if not isinstance(key, str):
            raise ValueError(f"{what} metadata keys must be strings, got {key!r}")
        try:
            json.dumps(value)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"{what} metadata[{key!r}] is not JSON-serializable ({type(value).__name__}): {exc}"
            ) from None
    return dict(metadata)


def validate_options(options: dict[str, Any]) -> dict[str, Any]:
    """Check names and types of ``workflow.options`` keywords; raise a clear error otherwise."""
    unknown = sorted(set(options) - set(OPTION_NAMES))
    if unknown:
        raise ValueError(
            f"unknown workflow option(s) {', '.join(map(repr, unknown))}; valid options are "
            f"{', '.join(OPTION_NAMES)} (Ray options such as num_cpus go to the remote "
            "function's own .options(...))"
        )
    checked = dict(options)
    if "task_id" in checked and checked["task_id"] is not None:
        checked["task_id"] = check_task_id(checked["task_id"])
    if "metadata" in checked:
        checked["metadata"] = check_json_metadata(checked["metadata"], "task")
    for flag in ("catch_exceptions", "checkpoint"):
        if flag in checked and not isinstance(checked[flag], bool):
            raise ValueError(f"workflow option {flag} must be a bool, got {checked[flag]!r}")
    if "max_retries" in checked:
        value = checked["max_retries"]
        if not isinstance(value, int) or isinstance(value, bool) or value < -1:
            raise ValueError(f"workflow option max_retries must be an int >= -1 (-1: forever), got {value!r}")
    if "retry_exceptions" in checked:
        checked["retry_exceptions"] = _check_retry_exceptions(checked["retry_exceptions"])
    return checked


def _check_retry_exceptions(value: Any) -> bool | tuple[type[BaseException], ...]:
    if isinstance(value, bool):
        return value
    if isinstance(value, type) and issubclass(value, BaseException):
        return (value,)
    if isinstance(value, Iterable):
        types = tuple(value)
        if types and all(isinstance(t, type) and issubclass(t, BaseException) for t in types):
            return types
    raise ValueError(f"workflow option retry_exceptions must be a bool or exception types, got {value!r}")


def check_task_id(task_id: Any) -> str:
    if not isinstance(task_id, str) or not task_id or len(task_id) > 200 or not task_id.isprintable():
        raise ValueError(f"task_id must be a non-empty printable str of at most 200 characters, got {task_id!r}")
    return task_id


class WorkflowFunction:
    """A Ray remote function plus workflow options; ``.bind`` makes a FunctionNode carrying them."""

    def __init__(self, remote: Any, options: dict[str, Any]):
        if not hasattr(remote, "bind"):
            raise TypeError(
                f"workflow.options(...) must decorate a @ray.remote function, got {remote!r}; "
                "put @workflow.options(...) above @ray.remote"
            )
        self._remote = remote
        self._options = options

    def bind(self, *args: Any, **kwargs: Any):
        node = self._remote.bind(*args, **kwargs)
        node._bound_options = _ray_carrier.merged_labels(node._bound_options, self._options)
        return node

    def options(self, **ray_options: Any) -> WorkflowFunction:
        """Ray's own options (num_cpus, resources, runtime_env, ...), and ``**workflow.options(...)``
        layered over the decorator's (as 2.47 merged them key by key)."""
        extra, ray_options = _ray_carrier.take(ray_options)
        return WorkflowFunction(self._remote.options(**ray_options), {**self._options, **extra})

    def remote(self, *args: Any, **kwargs: Any):
        """Plain (non-durable) Ray call, as without the decorator."""
        return self._remote.remote(*args, **kwargs)

    def __repr__(self) -> str:
        return f"WorkflowFunction({self._remote!r}, {self._options!r})"


class WorkflowOptions(Mapping):
    """What ``workflow.options(...)`` returns: a decorator and a mapping for ``f.options(**...)``.

    Same names and roles as ray.workflow 2.47's ``workflow.options`` class (api.py there),
    plus ``max_retries`` and ``retry_exceptions``, which 2.47 took only as Ray options.
    """

    def __init__(self, **workflow_options: Any):
        self.options = validate_options(workflow_options)
        self._mapping = _ray_carrier.mapping(self.options)

    def __getitem__(self, key: str) -> Any:
        return self._mapping[key]

    def __iter__(self):
        return iter(self._mapping)

    def __len__(self) -> int:
        return len(self._mapping)

    def __call__(self, remote: Any) -> WorkflowFunction:
        if isinstance(remote, WorkflowFunction):
            return WorkflowFunction(remote._remote, {**remote._options, **self.options})
        return WorkflowFunction(remote, self.options)

    def __repr__(self) -> str:
        return f"workflow.options({', '.join(f'{k}={v!r}' for k, v in self.options.items())})"


def options(**workflow_options: Any) -> WorkflowOptions:
    """Workflow options for a task, as a decorator or for ``f.options(**workflow.options(...))``.

    Args:
        task_id: the task's id in the workflow (str); a second task with the same id gets
            ``<id>_1``, a third ``<id>_2`` (as in 2.47). Default: ``<module>.<qualname>``.
        metadata: JSON-serializable dict, shown by ``get_metadata(workflow_id, task_id)``.
        catch_exceptions: the task's value becomes ``(result, None)`` or ``(None, exception)``.
        checkpoint: False keeps the output out of storage (a resume re-runs the task if needed).
        max_retries: retries of failed attempts (int >= -1; -1 forever; default 3).
        retry_exceptions: retry application exceptions too: a bool or exception types.

    Raises:
        ValueError: an unknown option (the message lists the valid ones) or a bad value.
    """
    return WorkflowOptions(**workflow_options)


def node_options(node: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the workflow options a FunctionNode carries, its Ray options without them)."""
    return _ray_carrier.take(dict(node._bound_options))
