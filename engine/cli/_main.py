"""The ``ray-durable`` console script and ``python -m engine``: parsing and dispatch.

``ray-durable replay ...`` is the replay tool (:mod:`replay._cli`); it never
imports Ray. The management commands (``list``, ``status``, ``resume``,
``resume-all``, ``cancel``, ``delete``, ``reindex``) connect to a Ray cluster
and call the public API of :mod:`engine`; Ray and the API are imported only
when one of them runs, so this module stays cheap to import.

Exit status: 0 success; 1 the operation failed (unknown workflow, a workflow
that failed, unreadable storage, ...); 2 a usage error (bad arguments, an
unknown storage scheme, a refused confirmation); 130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections import Counter
from collections.abc import Sequence
from typing import Any

from replay import WorkflowStatus
from storage_backends import (
    InvalidIdError,
    StorageError,
    UnknownSchemeError,
    default_storage_url,
    is_system_id,
    open_storage,
    validate_log_id,
)

from . import _format as fmt

PROG = "ray-durable"
_STATUSES = tuple(s.value for s in WorkflowStatus)
_FINAL = (WorkflowStatus.SUCCESSFUL, WorkflowStatus.CANCELED)


class UsageError(Exception):
    """Bad input found after parsing (exit status 2)."""


def main(argv: Sequence[str] | None = None) -> int:
    """``ray-durable COMMAND ...``: the replay tool and the management commands."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "replay":
        from replay._cli import replay_main  # no Ray on this path

        return replay_main(argv[1:], prog=f"{PROG} replay")
    args = _parser().parse_args(argv)
    if args.command == "replay":  # not reached (handled above); kept for the help listing
        from replay._cli import replay_main

        return replay_main(args.rest, prog=f"{PROG} replay")
    return _run(args)


# --- parsing --------------------------------------------------------------------------------

def _status_names(texts: Sequence[str] | None) -> list[str] | None:
    """``--status`` values (any case, also comma-separated), in the canonical order; UsageError if unknown."""
    if not texts:
        return None
    names = set()
    for text in texts:
        for part in filter(None, (p.strip() for p in text.split(","))):
            if part.upper() not in _STATUSES:
                raise UsageError(f"unknown workflow status {part!r}; use one of {', '.join(_STATUSES)}")
            names.add(part.upper())
    return sorted(names, key=_STATUSES.index) or None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Manage durable Ray workflows and inspect their logs.",
        epilog=f"'{PROG} COMMAND --help' describes one command. Exit status: 0 ok, 1 the operation "
               "failed, 2 usage error.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("replay", add_help=False,
                   help="inspect, verify, diff and export workflow logs (no Ray needed; "
                        f"'{PROG} replay --help')").add_argument("rest", nargs=argparse.REMAINDER)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        group = p.add_argument_group("storage and cluster")
        group.add_argument("--storage", metavar="URL",
                           help="a path, file://PATH or s3://BUCKET/PREFIX (default: $RAY_DURABLE_STORAGE, "
                                "else /tmp/ray/workflow_data)")
        group.add_argument("--endpoint-url", metavar="URL", help="S3 endpoint, for S3-compatible stores")
        group.add_argument("--region", metavar="NAME", help="S3 region")
        group.add_argument("--address", metavar="ADDR",
                           help="Ray cluster to connect to (default: $RAY_ADDRESS, else the cluster "
                                "'ray start' started on this machine, else a new local one)")
        return p

    p = command("list", "list workflows and their statuses")
    p.add_argument("--status", dest="statuses", nargs="+", action="extend",
                   metavar="STATUS", help=f"only these statuses ({', '.join(_STATUSES)}); repeatable")
    p.add_argument("--json", action="store_true", help='a JSON array of {"workflow_id", "status"}')

    p = command("status", "a workflow's status, start and end time, and metadata")
    p.add_argument("workflow_id", metavar="WID")
    p.add_argument("--json", action="store_true", help="everything workflow.get_metadata() returns, as JSON")

    p = command("resume", "resume a workflow from its last durable point; wait and print its output")
    p.add_argument("workflow_id", metavar="WID")

    p = command("resume-all", "resume every RESUMABLE workflow and wait for them (progress on stderr)")
    p.add_argument("--include-failed", action="store_true", help="FAILED workflows too")

    p = command("cancel", "cancel a workflow (a finished one is left as it is)")
    p.add_argument("workflow_id", metavar="WID")

    p = command("delete", "delete a workflow's log and outputs (asks first)")
    p.add_argument("workflow_id", metavar="WID")
    p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")

    command("reindex", "rebuild the derived status index from the logs (progress on stderr)")
    return parser


# --- running --------------------------------------------------------------------------------

def _err(text: str) -> None:
    sys.stdout.flush()
    sys.stderr.write(text.rstrip("\n") + "\n")
    sys.stderr.flush()


def _run(args: argparse.Namespace) -> int:
    try:
        if getattr(args, "workflow_id", None) is not None:
            try:
                validate_log_id(args.workflow_id)
            except InvalidIdError as exc:
                raise UsageError(str(exc)) from None
            if is_system_id(args.workflow_id):
                raise UsageError(f"workflow id {args.workflow_id!r} is reserved: 'system:...' ids are "
                                 "ray-durable's own logs")
        return _COMMANDS[args.command](args)
    except UsageError as exc:
        _err(f"{PROG} {args.command}: error: {exc}")
        return 2
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:  # noqa: BLE001 - one clear line, not a traceback
        if os.environ.get("RAY_DURABLE_DEBUG"):
            raise
        _err(f"error: {_describe(exc)}")
        user_id = getattr(args, "workflow_id", None)
        return 2 if isinstance(exc, InvalidIdError) and repr(user_id) in str(exc) else 1


def _describe(exc: BaseException) -> str:
    from ..exceptions import WorkflowError

    cause = _workflow_cause(exc)
    if isinstance(cause, (WorkflowError, StorageError)):
        return fmt.one_line(cause)
    return f"{type(cause).__name__}: {fmt.one_line(cause)}"


def _workflow_cause(exc: BaseException) -> BaseException:
    """What a task raised, out of Ray's ``RayTaskError`` wrapper (which is also an instance of it)."""
    ray_exceptions = sys.modules.get("ray.exceptions")  # never import Ray just to describe an error
    if ray_exceptions is not None and isinstance(exc, ray_exceptions.RayTaskError):
        cause = getattr(exc, "cause", None)
        if isinstance(cause, BaseException):
            return cause
    return exc


def _storage(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """The storage URL and options; checked here, before Ray is imported or started."""
    url = args.storage or default_storage_url()
    options = {k: v for k, v in (("endpoint_url", args.endpoint_url), ("region_name", args.region)) if v}
    try:
        open_storage(url, **options)
    except UnknownSchemeError as exc:
        raise UsageError(str(exc)) from None
    except TypeError as exc:
        if options:
            raise UsageError(f"--endpoint-url and --region apply to s3:// storage only, not {url!r}") from None
        raise UsageError(f"cannot open storage {url!r}: {exc}") from None
    except StorageError as exc:
        raise UsageError(f"cannot open storage {url!r}: {exc}") from None
    return url, options


def _connect(args: argparse.Namespace) -> Any:
    """Initialize the engine on the chosen storage and Ray cluster; returns the ``engine`` module."""
    url, options = _storage(args)
    args.storage_url = url
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("warning: %(message)s"))
    engine_logger = logging.getLogger("engine")
    engine_logger.addHandler(handler)
    engine_logger.setLevel(logging.WARNING)
    engine_logger.propagate = False

    import engine

    ray_kwargs: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING}
    if args.address:
        ray_kwargs["address"] = args.address
    engine.init(url, storage_options=options, **ray_kwargs)
    return engine


# --- commands -------------------------------------------------------------------------------

def _cmd_list(args: argparse.Namespace) -> int:
    statuses = _status_names(args.statuses)
    workflow = _connect(args)
    rows = workflow.list_all(set(statuses) if statuses else None)
    if args.json:
        sys.stdout.write(fmt.workflows_json(rows))
    else:
        sys.stdout.write(fmt.workflows_table(rows, args.storage_url, statuses))
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    workflow = _connect(args)
    status = workflow.get_status(args.workflow_id)
    metadata = workflow.get_metadata(args.workflow_id)
    render = fmt.status_json if args.json else fmt.status_text
    sys.stdout.write(render(args.workflow_id, status, metadata, args.storage_url))
    return 0


def _cmd_resume(args: argparse.Namespace) -> int:
    workflow = _connect(args)
    workflow.get_status(args.workflow_id)  # "does not exist in storage ..." for an unknown id
    _err(f"resuming workflow {args.workflow_id!r} ...")
    output = workflow.resume(args.workflow_id)
    sys.stdout.write(repr(output) + "\n")
    return 0


def _cmd_resume_all(args: argparse.Namespace) -> int:
    workflow = _connect(args)
    import ray

    resumed = workflow.resume_all(include_failed=args.include_failed)
    if not resumed:
        which = "RESUMABLE or FAILED" if args.include_failed else "RESUMABLE"
        sys.stdout.write(f"no {which} workflows to resume in {args.storage_url}\n")
        return 0
    _err(f"resuming {len(resumed)} workflow{'s' if len(resumed) != 1 else ''} ...")
    ids = {ref: wid for wid, ref in resumed}
    pending = list(ids)
    outcomes: dict[str, str] = {}
    while pending:
        ready, pending = ray.wait(pending, num_returns=1)
        wid = ids[ready[0]]
        outcome, detail = _outcome(workflow, wid, ready[0])
        outcomes[wid] = outcome
        _err(f"[{len(outcomes)}/{len(ids)}] {wid}: {outcome}" + (f": {detail}" if detail else ""))
    counts = Counter(outcomes.values())
    summary = ", ".join(f"{counts[o]} {o}" for o in ("SUCCESSFUL", "FAILED", "CANCELED") if counts[o])
    sys.stdout.write(f"resumed {len(outcomes)} workflow{'s' if len(outcomes) != 1 else ''}: {summary}\n")
    return 0 if counts["SUCCESSFUL"] == len(outcomes) else 1


def _outcome(workflow: Any, workflow_id: str, ref: Any) -> tuple[str, str]:
    """("SUCCESSFUL", "") or ("FAILED" / "CANCELED", one line saying why) for a finished ref."""
    import ray

    try:
        ray.get(ref)
        return "SUCCESSFUL", ""
    except Exception as exc:  # noqa: BLE001 - reported per workflow
        cause = _workflow_cause(exc)
        if isinstance(cause, workflow.WorkflowCancellationError):
            return "CANCELED", fmt.one_line(cause)
        if not isinstance(cause, workflow.WorkflowError):
            # e.g. the output cannot be unpickled here: the log says whether it succeeded.
            try:
                if workflow.get_status(workflow_id) == WorkflowStatus.SUCCESSFUL:
                    return "SUCCESSFUL", f"(output not loadable here: {fmt.one_line(cause)})"
            except Exception:  # noqa: BLE001
                pass
        return "FAILED", _describe(cause)


def _cmd_cancel(args: argparse.Namespace) -> int:
    workflow = _connect(args)
    before = workflow.get_status(args.workflow_id)
    if before in _FINAL:
        sys.stdout.write(f"workflow {args.workflow_id!r} is already {before}; nothing to cancel\n")
        return 0
    workflow.cancel(args.workflow_id)
    sys.stdout.write(f"canceled workflow {args.workflow_id!r} (was {before})\n")
    return 0


def _cmd_delete(args: argparse.Namespace) -> int:
    interactive = sys.stdin is not None and sys.stdin.isatty()
    if not args.yes and not interactive:
        raise UsageError(f"refusing to delete workflow {args.workflow_id!r} without confirmation: "
                         "stdin is not a terminal; pass --yes to delete it")
    workflow = _connect(args)
    status = workflow.get_status(args.workflow_id)
    if not args.yes:
        sys.stderr.write(f"delete workflow {args.workflow_id!r} ({status}) and all its data from "
                         f"{args.storage_url}? [y/N] ")
        sys.stderr.flush()
        try:
            answer = input()
        except EOFError:
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            _err("not deleted")
            return 1
    workflow.delete(args.workflow_id)
    sys.stdout.write(f"deleted workflow {args.workflow_id!r} ({status})\n")
    return 0


def _cmd_reindex(args: argparse.Namespace) -> int:
    workflow = _connect(args)
    counts = workflow.reindex(progress=fmt.Progress("reindex"))
    labels = {"workflows": "workflows", "final": "finished (SUCCESSFUL or CANCELED)", "failed": "FAILED"}
    details = ", ".join(f"{value} {labels.get(key, key)}" for key, value in counts.items())
    sys.stdout.write(f"rebuilt the status index of {args.storage_url}: {details}\n")
    return 0


_COMMANDS = {
    "list": _cmd_list,
    "status": _cmd_status,
    "resume": _cmd_resume,
    "resume-all": _cmd_resume_all,
    "cancel": _cmd_cancel,
    "delete": _cmd_delete,
    "reindex": _cmd_reindex,
}


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
