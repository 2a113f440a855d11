"""The ``ray-durable`` console script and ``python -m engine``: parsing and dispatch.

``list``, ``status``, ``show``, ``reindex``, ``ui`` and ``ray-durable replay ...`` read storage
directly and never start or join Ray (:mod:`._storage_commands`, :mod:`replay._cli`,
:mod:`engine.ui`); ``send-event`` writes to storage and joins a cluster only if one is up, to
tell its manager (:mod:`._event_commands`). ``resume``, ``resume-all``, ``cancel`` and ``delete``
look at storage first and connect to a Ray cluster only when the workflow needs a live manager
(:mod:`._cluster_commands`).
Nothing imports Ray unless it is needed, so this module stays cheap to import.

Exit status: 0 success; 1 the operation failed (unknown workflow, a workflow that failed,
unreadable storage, ...); 2 a usage error (bad arguments, an unknown storage scheme, a refused
confirmation); 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import sys
from collections.abc import Sequence

from storage_backends import InvalidIdError

from .._names import validate_workflow_id

from . import _format as fmt
from ._common import PROG, STATUSES, UsageError, describe, err, restore_stdout, results_stream

_SORT_KEYS = ("start", "end", "duration", "id", "status")


def main(argv: Sequence[str] | None = None) -> int:
    """``ray-durable COMMAND ...``: the replay tool and the management commands."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:2] == ["replay", "check"]:  # imports the user's DAG module, so it lives in the engine
        from ._fork_commands import check_main

        return check_main(argv[2:])
    if argv and argv[0] == "replay":
        from replay._cli import replay_main  # no Ray on this path

        return replay_main(argv[1:], prog=f"{PROG} replay")
    parser = _parser()
    _complete(parser)
    args = parser.parse_args(argv)
    if args.command == "replay":  # not reached (handled above); kept for the help listing
        from replay._cli import replay_main

        return replay_main(args.rest, prog=f"{PROG} replay")
    if args.command == "show":  # the replay tool's show, under its short name
        return _show(args)
    return _run(args)


def version() -> str:
    try:
        return importlib.metadata.version("ray-durable")
    except importlib.metadata.PackageNotFoundError:  # run from a checkout that is not installed
        return "unknown"


def _complete(parser: argparse.ArgumentParser) -> None:
    """Shell completion, when the shell asks for it (``eval "$(register-python-argcomplete ray-durable)"``)."""
    if "_ARGCOMPLETE" in os.environ:
        import argcomplete

        argcomplete.autocomplete(parser)


# --- parsing --------------------------------------------------------------------------------

def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Manage durable Ray workflows and inspect their logs.",
        epilog=f"'{PROG} COMMAND --help' describes one command. Exit status: 0 ok, 1 the operation "
               "failed, 2 usage error.")
    parser.add_argument("--version", action="version", version=f"{PROG} {version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("replay", add_help=False,
                   help="inspect, verify, diff and export workflow logs (no Ray needed; "
                        f"'{PROG} replay --help'); 'replay check WID --dag MODULE:FUNCTION' checks a "
                        "DAG against logs").add_argument("rest", nargs=argparse.REMAINDER)

    def command(name: str, help_text: str, cluster: bool = False, json_help: str = "") -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        group = p.add_argument_group("storage" + (" and cluster" if cluster else ""))
        group.add_argument("--storage", metavar="URL",
                           help="a path, file://PATH or s3://BUCKET/PREFIX (default: $RAY_DURABLE_STORAGE, "
                                "else /tmp/ray/workflow_data)")
        group.add_argument("--endpoint-url", metavar="URL", help="S3 endpoint, for S3-compatible stores")
        group.add_argument("--region", metavar="NAME", help="S3 region")
        if cluster:
            group.add_argument("--address", metavar="ADDR",
                               help="the Ray cluster to join when one is needed (default: $RAY_ADDRESS, else "
                                    "the cluster 'ray start' started on this machine if it is alive, else a "
                                    "new local one)")
        if json_help:
            p.add_argument("--json", action="store_true", help=json_help)
        return p

    p = command("list", "list workflows: status, start, end, duration, failed task (reads storage only)",
                json_help='a JSON array of {"workflow_id", "status", "start_time", "end_time", ...}')
    p.add_argument("--status", dest="statuses", nargs="+", action="extend",
                   metavar="STATUS", help=f"only these statuses ({', '.join(STATUSES)}); repeatable")
    p.add_argument("--since", metavar="WHEN", type=fmt.parse_since,
                   help="only workflows started since WHEN: a duration ago (90s, 30m, 2h, 7d) or a date/time "
                        "(2026-11-30, 2026-11-30T08:00, local time unless it names a zone)")
    p.add_argument("--limit", metavar="N", type=_positive, help="show the first N (after sorting)")
    p.add_argument("--sort", choices=_SORT_KEYS, default="start",
                   help="start (default), end, duration: latest/longest first; id, status: A-Z")
    p.add_argument("--reverse", action="store_true", help="reverse the order")

    p = command("status", "a workflow's status, failure, runs, lease, times and metadata (reads storage only)",
                json_help="workflow.get_metadata()'s fields plus failure, runs, lease and storage, as JSON")
    p.add_argument("workflow_id", metavar="WID")

    p = command("show", "the replay tool's 'show': status, every task, attempts, durations, errors, "
                        "output (reads storage only)",
                json_help="the workflow as JSON: status, failure, runs, every task with its attempts and errors")
    p.add_argument("workflow_id", metavar="WID")
    p.add_argument("--load-payloads", action="store_true",
                   help="also unpickle and print output values (runs code from storage: trusted logs only)")

    p = command("resume", "resume a workflow from its last durable point; wait and print its output",
                cluster=True, json_help='{"workflow_id", "status", "output": repr of the output}')
    p.add_argument("workflow_id", metavar="WID")

    p = command("resume-all", "resume every RESUMABLE workflow and wait for them (progress on stderr)",
                cluster=True, json_help='{"resumed": [{"workflow_id", "outcome", "detail"}, ...]}')
    p.add_argument("--include-failed", action="store_true", help="FAILED workflows too")

    p = command("cancel", "cancel a workflow (a finished one is left as it is)", cluster=True,
                json_help='{"workflow_id", "before", "status"}')
    p.add_argument("workflow_id", metavar="WID")

    p = command("delete", "delete a workflow's log and outputs (asks first)", cluster=True,
                json_help='{"workflow_id", "deleted", "status"}')
    p.add_argument("workflow_id", metavar="WID")
    p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")

    command("reindex", "rebuild the derived status index from the logs (progress on stderr)",
            json_help='{"workflows", "final", "failed"} counts')

    from . import _gc_commands
    _gc_commands.add_arguments(command("gc", _gc_commands.HELP, json_help=_gc_commands.JSON_HELP))

    p = command("send-event", "send an event to a workflow: durable when this returns; the workflow's "
                              "wait on KEY takes it, now or when it waits (needs only storage)", cluster=True)
    p.add_argument("workflow_id", metavar="WID")
    p.add_argument("event_key", metavar="KEY")
    p.add_argument("--json", dest="payload", metavar="PAYLOAD", default="null",
                   help="the payload, as JSON (default: null); '-' reads it from stdin")

    from ._fork_commands import add_fork_parser

    add_fork_parser(command)

    p = command("ui", "a local web UI over a storage: workflows, their timelines, tasks and events "
                      "(reads storage only)", json_help='print {"url": ...} once it is serving')
    p.add_argument("--host", default="127.0.0.1", help="interface to serve on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8365, metavar="N", help="port (default 8365; 0: any free one)")
    p.add_argument("--load-payloads", action="store_true",
                   help="let the pages unpickle and show output values (runs code from storage: trusted "
                        "storage only)")
    return parser


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


# --- running --------------------------------------------------------------------------------

def _show(args: argparse.Namespace) -> int:
    from replay._cli import replay_main

    argv = ["show", args.workflow_id]
    for flag, value in (("--storage", args.storage), ("--endpoint-url", args.endpoint_url),
                        ("--region", args.region)):
        if value:
            argv += [flag, value]
    argv += ["--json"] * args.json + ["--load-payloads"] * args.load_payloads
    return replay_main(argv, prog=f"{PROG} show")


def _run(args: argparse.Namespace) -> int:
    try:
        return _run_command(args)
    finally:
        restore_stdout()


def _run_command(args: argparse.Namespace) -> int:
    try:
        if getattr(args, "workflow_id", None) is not None:
            try:
                validate_workflow_id(args.workflow_id)
            except InvalidIdError as exc:
                raise UsageError(str(exc)) from None
        return _handler(args.command)(args)
    except UsageError as exc:
        err(f"{PROG} {args.command}: error: {exc}")
        return 2
    except KeyboardInterrupt:
        err("interrupted")
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), results_stream().fileno())
        return 0
    except Exception as exc:  # noqa: BLE001 - one clear line, not a traceback
        if os.environ.get("RAY_DURABLE_DEBUG"):
            raise
        err(f"error: {describe(exc)}")
        user_id = getattr(args, "workflow_id", None)
        return 2 if isinstance(exc, InvalidIdError) and repr(user_id) in str(exc) else 1


def _handler(command: str):
    if command in ("list", "status", "reindex", "ui"):
        from . import _storage_commands as module
    elif command == "send-event":
        from . import _event_commands as module
    elif command == "fork":
        from . import _fork_commands as module
    elif command == "gc":
        from . import _gc_commands as module
    else:
        from . import _cluster_commands as module
    return getattr(module, "cmd_" + command.replace("-", "_"))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
