"""``resume``, ``resume-all``, ``cancel`` and ``delete``: storage first, a Ray cluster only if needed.

Each reads the workflow from storage first, so an unknown id, a finished workflow or a FAILED
one that is only to be canceled or deleted gets its answer with no Ray process. Only a
workflow that must run, or that a live manager may be driving (its log says RUNNING or
PENDING), makes the command join or start Ray (:func:`connect`).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections import Counter
from typing import Any

from replay import WorkflowStatus

from ..exceptions import WorkflowNotResumableError
from ..store._offline import cancel_in_storage, delete_from_storage
from ..store._outputs import output_from_state
from ..store._status import list_workflows
from . import _format as fmt
from ._common import (UsageError, describe, err, out, ray_output_to_stderr, storage_args, with_storage,
                      workflow_cause)
from ._storage_commands import read_workflow

_FINAL = (WorkflowStatus.SUCCESSFUL, WorkflowStatus.CANCELED)
_DRIVEN = (WorkflowStatus.RUNNING, WorkflowStatus.PENDING)


def connect(args: argparse.Namespace) -> Any:
    """Initialize the engine on the chosen storage and Ray cluster; returns the ``engine`` module."""
    url, options = storage_args(args)
    args.storage_url = url
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("warning: %(message)s"))
    engine_logger = logging.getLogger("engine")
    engine_logger.addHandler(handler)
    engine_logger.setLevel(logging.WARNING)
    engine_logger.propagate = False

    import engine

    # The tasks' own output goes to the job that runs them, not to this command's stdout.
    ray_kwargs: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING}
    if args.address:
        ray_kwargs["address"] = args.address
    ray_output_to_stderr()
    engine.init(url, storage_options=options, **ray_kwargs)
    return engine


def cmd_resume(args: argparse.Namespace) -> int:
    found = read_workflow(args)
    state = found.state
    if state.status is WorkflowStatus.CANCELED:
        raise WorkflowNotResumableError(args.workflow_id, "it was canceled")
    if state.status is WorkflowStatus.SUCCESSFUL:  # nothing to run: its stored output, without Ray
        err(f"workflow {args.workflow_id!r} had already finished; its stored output:")
        output = with_storage(args, lambda storage: output_from_state(storage, args.workflow_id, state, None))
    else:
        workflow = connect(args)
        err(f"resuming workflow {args.workflow_id!r} ...")
        output = workflow.resume(args.workflow_id)
    if args.json:
        out(fmt.to_json({"workflow_id": args.workflow_id, "status": "SUCCESSFUL",
                                      "output": repr(output)}))
    else:
        out(repr(output) + "\n")
    return 0


def cmd_resume_all(args: argparse.Namespace) -> int:
    wanted = {WorkflowStatus.RESUMABLE} | ({WorkflowStatus.FAILED} if args.include_failed else set())
    candidates = with_storage(args, lambda storage: list_workflows(storage, wanted))
    if not candidates:
        which = "RESUMABLE or FAILED" if args.include_failed else "RESUMABLE"
        if args.json:
            out(fmt.to_json({"resumed": []}))
        else:
            out(f"no {which} workflows to resume in {args.storage_url}\n")
        return 0
    workflow = connect(args)
    import ray

    resumed = workflow.resume_all(include_failed=args.include_failed)
    err(f"resuming {len(resumed)} workflow{'s' if len(resumed) != 1 else ''} ...")
    ids = {ref: wid for wid, ref in resumed}
    pending = list(ids)
    outcomes: dict[str, tuple[str, str]] = {}
    while pending:
        ready, pending = ray.wait(pending, num_returns=1)
        wid = ids[ready[0]]
        outcomes[wid] = _outcome(workflow, wid, ready[0])
        outcome, detail = outcomes[wid]
        err(f"[{len(outcomes)}/{len(ids)}] {wid}: {outcome}" + (f": {detail}" if detail else ""))
    counts = Counter(outcome for outcome, _ in outcomes.values())
    if args.json:
        out(fmt.to_json({"resumed": [{"workflow_id": wid, "outcome": o, "detail": d}
                                                  for wid, (o, d) in outcomes.items()]}))
    else:
        summary = ", ".join(f"{counts[o]} {o}" for o in ("SUCCESSFUL", "FAILED", "CANCELED") if counts[o])
        out(f"resumed {len(outcomes)} workflow{'s' if len(outcomes) != 1 else ''}: {summary}\n")
    return 0 if counts["SUCCESSFUL"] == len(outcomes) else 1


def _outcome(workflow: Any, workflow_id: str, ref: Any) -> tuple[str, str]:
    """("SUCCESSFUL", "") or ("FAILED" / "CANCELED", one line saying why) for a finished ref."""
    import ray

    try:
        ray.get(ref)
        return "SUCCESSFUL", ""
    except Exception as exc:  # noqa: BLE001 - reported per workflow
        cause = workflow_cause(exc)
        if isinstance(cause, workflow.WorkflowCancellationError):
            return "CANCELED", fmt.one_line(cause)
        if not isinstance(cause, workflow.WorkflowError):
            # e.g. the output cannot be unpickled here: the log says whether it succeeded.
            try:
                if workflow.get_status(workflow_id) == WorkflowStatus.SUCCESSFUL:
                    return "SUCCESSFUL", f"(output not loadable here: {fmt.one_line(cause)})"
            except Exception:  # noqa: BLE001
                pass
        return "FAILED", describe(cause)


def cmd_cancel(args: argparse.Namespace) -> int:
    found = read_workflow(args)
    logged, before = found.state.status, found.status
    if logged in _FINAL:
        after = logged
        text = f"workflow {args.workflow_id!r} is already {logged}; nothing to cancel\n"
    elif logged in _DRIVEN:  # a live manager may be driving it: it must stop its tasks
        workflow = connect(args)
        before = workflow.get_status(args.workflow_id)  # the manager knows whether it drives it
        workflow.cancel(args.workflow_id)
        after = WorkflowStatus.CANCELED
        text = f"canceled workflow {args.workflow_id!r} (was {before})\n"
    else:  # FAILED: nobody drives it, the log is all there is to change
        after = with_storage(args, lambda storage: cancel_in_storage(storage, args.workflow_id, found.state))
        text = f"canceled workflow {args.workflow_id!r} (was {before})\n"
    if args.json:
        out(fmt.to_json({"workflow_id": args.workflow_id, "before": str(before),
                                      "status": str(after)}))
    else:
        out(text)
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    interactive = sys.stdin is not None and sys.stdin.isatty()
    if not args.yes and not interactive:
        raise UsageError(f"refusing to delete workflow {args.workflow_id!r} without confirmation: "
                         "stdin is not a terminal; pass --yes to delete it")
    found = read_workflow(args)
    status = found.status
    if not args.yes:
        sys.stderr.write(f"delete workflow {args.workflow_id!r} ({status}) and all its data from "
                         f"{args.storage_url}? [y/N] ")
        sys.stderr.flush()
        try:
            answer = input()
        except EOFError:
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            err("not deleted")
            return 1
    if found.state.status in _DRIVEN:  # the manager refuses if it drives it
        connect(args).delete(args.workflow_id)
    else:
        with_storage(args, lambda storage: delete_from_storage(storage, args.workflow_id, args.storage_url))
    if args.json:
        out(fmt.to_json({"workflow_id": args.workflow_id, "deleted": True, "status": str(status)}))
    else:
        out(f"deleted workflow {args.workflow_id!r} ({status})\n")
    return 0
