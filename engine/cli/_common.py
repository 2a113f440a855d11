"""What every ``ray-durable`` command shares: errors, stderr, and opening the storage (no Ray)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from replay import WorkflowStatus
from replay._inspect import ToolError, open_tool_storage
from storage_backends import Storage, StorageError, default_storage_url

from . import _format as fmt

PROG = "ray-durable"
STATUSES = tuple(s.value for s in WorkflowStatus)
T = TypeVar("T")


class UsageError(Exception):
    """Bad input found after parsing (exit status 2)."""


# A command's stdout carries its result and nothing else, so that `--json` output parses. Ray's
# driver prints raylet warnings ("N PYTHON worker processes have been started ...") to whatever
# sys.stdout is at that moment, even with log_to_driver=False; once a command joins Ray,
# sys.stdout points at stderr and results are written to the stream saved here.
_results: Any = None


def results_stream() -> Any:
    """The command's stdout: the file its results go to."""
    return _results or sys.stdout


def out(text: str) -> None:
    """Write ``text`` (a result: table, JSON, summary line) to the command's stdout."""
    results_stream().write(text)


def flush_results() -> None:
    results_stream().flush()


def ray_output_to_stderr() -> None:
    """From now until :func:`restore_stdout`, anything else printed to sys.stdout goes to stderr."""
    global _results
    if _results is None:
        _results = sys.stdout
        sys.stdout = sys.stderr


def restore_stdout() -> None:
    """End of a command: disconnect from Ray (which prints the warnings it held back to
    deduplicate them, to stderr still), then give sys.stdout back."""
    global _results
    if _results is None:
        return
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray.shutdown()
    sys.stdout, _results = _results, None


def err(text: str) -> None:
    """One line (or a few) on stderr, after whatever stdout holds so far."""
    flush_results()
    sys.stderr.write(text.rstrip("\n") + "\n")
    sys.stderr.flush()


def storage_args(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """The storage URL and options the command line names; checked here, before anything else."""
    url = args.storage or default_storage_url()
    options = {k: v for k, v in (("endpoint_url", args.endpoint_url), ("region_name", args.region)) if v}
    _open(url, options)
    return url, options


def _open(url: str, options: dict[str, Any]) -> Storage:
    try:
        return open_tool_storage(url, options.get("endpoint_url"), options.get("region_name"))
    except ToolError as exc:  # the replay tool's words for a storage that cannot be opened
        raise UsageError(str(exc)) from None


def with_storage(args: argparse.Namespace, work: Callable[[Storage], Awaitable[T]]) -> T:
    """Run ``work(storage)`` on the command line's storage, in an event loop of its own, and close it."""
    url, options = storage_args(args)
    args.storage_url = url

    async def run() -> T:
        storage = _open(url, options)
        try:
            return await work(storage)
        finally:
            await storage.close()

    return asyncio.run(run())


def status_names(texts: Sequence[str] | None) -> list[str] | None:
    """``--status`` values (any case, also comma-separated), in the canonical order; UsageError if unknown."""
    if not texts:
        return None
    names = set()
    for text in texts:
        for part in filter(None, (p.strip() for p in text.split(","))):
            if part.upper() not in STATUSES:
                raise UsageError(f"unknown workflow status {part!r}; use one of {', '.join(STATUSES)}")
            names.add(part.upper())
    return sorted(names, key=STATUSES.index) or None


def describe(exc: BaseException) -> str:
    """One line for an error: a workflow or storage error's own message, else ``Type: message``."""
    from ..exceptions import WorkflowError

    cause = workflow_cause(exc)
    if isinstance(cause, (WorkflowError, StorageError)):
        return fmt.one_line(cause)
    return f"{type(cause).__name__}: {fmt.one_line(cause)}"


def workflow_cause(exc: BaseException) -> BaseException:
    """What a task raised, out of Ray's ``RayTaskError`` wrapper (which is also an instance of it)."""
    ray_exceptions = sys.modules.get("ray.exceptions")  # never import Ray just to describe an error
    if ray_exceptions is not None and isinstance(exc, ray_exceptions.RayTaskError):
        cause = getattr(exc, "cause", None)
        if isinstance(cause, BaseException):
            return cause
    return exc
